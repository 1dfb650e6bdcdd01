// ionn._ionn: the planners, the simulator, the engine and the client for
// Python, with the command line's vocabulary. The package's __init__.py
// (python/ionn/) wraps these objects as read-only mappings whose fields
// are those of the JSON the command of the same name writes (PlanToJson,
// SimResultToJson, ClientResultToJson, ProfileToJson): one implementation
// of every rule and every field name. A result is computed in C++ and kept
// there; its JSON is made only when a field is first read, so a sweep of
// plans and simulations pays for no document it does not look at. Errors
// raise ValueError with the message the command line prints.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

#include "ionn/client.h"
#include "ionn/client_report.h"
#include "ionn/cost_graph.h"
#include "ionn/engine.h"
#include "ionn/model_costs.h"
#include "ionn/model_source.h"
#include "ionn/plan.h"
#include "ionn/protocol.h"
#include "ionn/sim.h"
#include "ionn/version.h"
#include "ionn/replan.h"
#include "ionn/slices.h"
#include "ionn/weight_codec.h"

namespace py = pybind11;

namespace ionn {
namespace {

template <typename T>
T Value(Result<T> r) {
  if (!r.ok()) throw py::value_error(r.status().message());
  return std::move(r).value();
}

using Costs = std::shared_ptr<CostGraph>;

// The command line's range for the same value (options.cc), or ValueError
// naming the argument.
void CheckRange(double v, double lo, double hi, const std::string& what, bool lo_open = false) {
  if (!(std::isfinite(v) && (lo_open ? v > lo : v >= lo) && v <= hi)) {
    std::ostringstream msg;
    msg << what << ": " << v << " is not in " << (lo_open ? "(" : "[") << lo << ", " << hi << "]";
    throw py::value_error(msg.str());
  }
}
LinkSpec CheckedLink(double uplink_mbps, std::optional<double> downlink_mbps, double rtt_ms) {
  CheckRange(uplink_mbps, 0, 1e9, "uplink_mbps", /*lo_open=*/true);
  if (downlink_mbps) CheckRange(*downlink_mbps, 0, 1e9, "downlink_mbps", /*lo_open=*/true);
  CheckRange(rtt_ms, 0, 1e7, "rtt_ms");
  return MakeLinkSpec(uplink_mbps, downlink_mbps.value_or(uplink_mbps), rtt_ms);
}

// A model: its architecture, and its weights when it was loaded with them.
struct Model {
  Graph graph;
  std::string given;  // the name or path it was loaded by
  bool with_weights = false;
};
using ModelPtr = std::shared_ptr<Model>;

ModelPtr LoadPyModel(const std::string& path_or_zoo, std::optional<std::vector<int64_t>> input_shape, bool weights) {
  OnnxImportOptions onnx;
  if (input_shape) onnx.input_shapes[""] = Shape(input_shape->begin(), input_shape->end());
  const bool file = path_or_zoo.find('/') != std::string::npos || path_or_zoo.find(".onnx") != std::string::npos;
  return std::make_shared<Model>(
      Model{Value(LoadModel(file ? path_or_zoo : "", file ? "" : path_or_zoo, weights, onnx)), path_or_zoo, weights});
}

py::list Layers(const Graph& g) {
  py::list layers;
  for (const Layer& l : g.layers) {
    py::dict d;
    d["name"] = l.name;
    d["kind"] = LayerKindName(l.kind);
    d["output_shape"] = std::vector<int64_t>(l.output_shape.begin(), l.output_shape.end());
    d["weight_bytes"] = LayerWeightBytes(l);
    layers.append(d);
  }
  return layers;
}

CostSources Sources(const std::string& client_profile, const std::string& server_profile,
                    const std::string& server_regression, bool paper_profiles, const std::string& profile_dir) {
  CostSources sources;
  sources.client_profile = client_profile;
  sources.server_profile = server_profile;
  sources.server_regression = server_regression;
  sources.paper_profiles = paper_profiles;
  sources.paper_profile_dir = profile_dir;
  return sources;
}

// A numpy array that owns `t`'s data: no copy.
py::array_t<float> ToNumpy(Tensor t) {
  auto* data = new std::vector<float>(std::move(t.data));
  py::capsule owner(data, [](void* p) { delete static_cast<std::vector<float>*>(p); });
  return py::array_t<float>(std::vector<py::ssize_t>(t.shape.begin(), t.shape.end()), data->data(), owner);
}

// One model input from numpy: float32 of the input's shape (converted
// from another float dtype; anything else is refused).
Tensor FromNumpy(const GraphInput& in, const py::array& x) {
  if (x.dtype().kind() != 'f') {
    throw py::value_error("input '" + in.name + "': dtype " + std::string(py::str(x.dtype())) +
                          ", expected float32 of shape " + ShapeToString(in.shape));
  }
  Shape got(x.shape(), x.shape() + x.ndim());
  if (got != in.shape) {
    throw py::value_error("input of shape " + ShapeToString(got) + ", the model's input '" + in.name + "' is " +
                          ShapeToString(in.shape));
  }
  auto f = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(x);
  return Tensor{in.shape, std::vector<float>(f.data(), f.data() + f.size())};
}

TensorMap Inputs(const Model& model, const py::object& x, uint64_t seed) {
  TensorMap inputs;
  if (x.is_none()) {
    for (const auto& in : model.graph.inputs) inputs[in.name] = SeededInput(in.shape, seed);
    return inputs;
  }
  if (model.graph.inputs.size() != 1) {
    throw py::value_error("the model has " + std::to_string(model.graph.inputs.size()) +
                          " inputs; give none (seeded inputs) or use a model with one");
  }
  py::array array = py::array::ensure(x);
  if (!array) {
    PyErr_Clear();
    throw py::value_error("x: not an array of numbers (give a numpy float32 array of shape " +
                          ShapeToString(model.graph.inputs[0].shape) + ")");
  }
  inputs[model.graph.inputs[0].name] = FromNumpy(model.graph.inputs[0], array);
  return inputs;
}

// Whether planning or simulating `costs` takes long enough to let other
// Python threads run meanwhile: on a small graph (AlexNet: ~10 us) handing
// the interpreter over and back would cost a tenth of the work.
bool WorthReleasing(const CostGraph& costs) { return costs.num_layers() >= 64; }

// Arrivals from a spec (as --arrivals) or a list of arrival times in ms.
Arrivals ToArrivals(const py::object& given) {
  if (PyUnicode_Check(given.ptr()) && PyUnicode_CompareWithASCIIString(given.ptr(), "back-to-back") == 0) {
    return Arrivals{};  // the default: no parse on a sweep's every call
  }
  if (py::isinstance<py::str>(given)) {
    const std::string spec = given.cast<std::string>();
    if (spec.rfind("trace:", 0) != 0) return Value(ParseArrivals(spec));
    std::ifstream in(spec.substr(6), std::ios::binary);
    if (!in) throw py::value_error("arrivals trace '" + spec.substr(6) + "': cannot open it");
    std::ostringstream text;
    text << in.rdbuf();
    auto times = ParseArrivalTrace(text.str());
    if (!times.ok()) throw py::value_error("arrivals trace '" + spec.substr(6) + "': " + times.status().message());
    Arrivals a;
    a.kind = Arrivals::Kind::kTrace;
    a.times_ms = std::move(times).value();
    return a;
  }
  Arrivals a;
  a.kind = Arrivals::Kind::kTrace;
  try {
    a.times_ms = given.cast<std::vector<double>>();
  } catch (const py::cast_error&) {
    throw py::value_error("arrivals: a spec (back-to-back, periodic:FPS, poisson:RATE[:SEED], trace:FILE) or a "
                          "list of arrival times in ms");
  }
  if (a.times_ms.empty()) throw py::value_error("arrivals: an empty list of arrival times");
  for (size_t i = 0; i < a.times_ms.size(); ++i) {
    CheckRange(a.times_ms[i], i ? a.times_ms[i - 1] : 0, 1e12, "arrivals[" + std::to_string(i) + "] (times do not decrease)");
  }
  return a;
}

// Arrivals with their queue bound (-1: none), as --arrivals and --max-queue.
Arrivals ToArrivals(const py::object& given, int max_queue) {
  Arrivals a = ToArrivals(given);
  if (max_queue != -1) CheckRange(max_queue, 0, 1e8, "max_queue (-1: no limit)");
  const Status s = SetMaxQueue(&a, max_queue);
  if (!s.ok()) throw py::value_error("max_queue " + s.message());
  return a;
}

// A plan and the costs it was made for.
using PlanPtr = std::shared_ptr<const UploadPlan>;
struct PyPlan {
  Costs costs;
  PlanPtr plan;
  py::object doc;  // its JSON's fields, parsed when first read
};

// A plan from what Python gives: an algorithm's name, a plan made here
// (ionn.Plan), a plan of one's own (a list of
// partitions, each a list of layer names, or a dict with "partitions"), or
// a function of the costs that returns one of these. A function's own
// exception passes through.
PlanPtr ToPlan(const Costs& costs, const py::handle& given, const std::string& granularity, int depth = 0) {
  if (depth == 0) Value(ParseGranularity(granularity));  // checked whatever the plan
  if (py::isinstance<PyPlan>(given)) {
    const PyPlan& p = given.cast<const PyPlan&>();
    if (p.costs == costs) return p.plan;
    py::list names;  // made for other costs: checked as a plan of names
    for (const Partition& part : p.plan->partitions) {
      py::list layers;
      for (int k : part.layers) layers.append(p.costs->layer(k).name);
      names.append(layers);
    }
    return ToPlan(costs, names, granularity, depth);
  }
  if (py::isinstance<py::str>(given)) {
    PlannerOptions o;
    o.algorithm = given.cast<std::string>();
    o.granularity = Value(ParseGranularity(granularity));
    Result<UploadPlan> made = Status::Internal("not planned");
    {
      std::optional<py::gil_scoped_release> release;  // costs are immutable: threads may plan on them at once
      if (WorthReleasing(*costs)) release.emplace();
      made = MakePlan(*costs, o);
    }
    return std::make_shared<const UploadPlan>(Value(std::move(made)));
  }
  if (PyCallable_Check(given.ptr())) {
    if (depth > 0) throw py::value_error("a planner returned a function, not a plan");
    return ToPlan(costs, given(costs), granularity, depth + 1);
  }
  std::string text;
  try {
    text = py::module_::import("json").attr("dumps")(given).cast<std::string>();
  } catch (const py::error_already_set&) {
    throw py::value_error("a plan is a list of partitions, each a list of layer names (got " +
                          std::string(py::str(py::type::of(given).attr("__name__"))) + ")");
  }
  return std::make_shared<const UploadPlan>(Value(PlanFromJson(*costs, text)));
}

// A simulation: the result, and the plan and costs it replayed.
struct PySim {
  Costs costs;
  PlanPtr plan;
  SimResult result;
  std::string sharing;
  py::object doc;  // its JSON's fields, parsed when first read
};

std::string Json(const PyPlan& p) { return PlanToJson(*p.costs, *p.plan); }
std::string Json(const PySim& s, bool with_queries) {
  RunSetting setting;
  setting.link_sharing = s.sharing;
  return SimResultToJson(*s.costs, s.result, *s.plan, setting, with_queries);
}
py::object Loads(const std::string& text) { return py::module_::import("json").attr("loads")(text); }

py::dict Queries(const SimResult& r) {
  const size_t n = r.queries.size();
  py::array_t<double> arrival(n), start(n), end(n), latency(n);
  py::array_t<int> partitions(n);
  py::array_t<bool> during(n), exact(n);
  for (size_t i = 0; i < n; ++i) {
    arrival.mutable_at(i) = r.queries[i].arrival_ms;
    start.mutable_at(i) = r.queries[i].start_ms;
    end.mutable_at(i) = r.queries[i].end_ms;
    latency.mutable_at(i) = r.queries[i].latency_ms;
    partitions.mutable_at(i) = r.queries[i].partitions_uploaded;
    during.mutable_at(i) = r.queries[i].during_upload;
    exact.mutable_at(i) = r.queries[i].exact;
  }
  py::dict q;
  q["arrival_ms"] = arrival;
  q["start_ms"] = start;
  q["end_ms"] = end;
  q["latency_ms"] = latency;
  q["partitions_uploaded"] = partitions;
  q["during_upload"] = during;
  q["exact"] = exact;
  for (auto item : q) item.second.attr("flags").attr("writeable") = false;  // a result is read-only
  return q;
}

py::object Doc(PyPlan& p) {
  if (!p.doc) p.doc = Loads(Json(p));
  return p.doc;
}
py::object Doc(PySim& s) {
  if (!s.doc) {
    s.doc = Loads(Json(s, /*with_queries=*/false));
    s.doc["queries"] = Queries(s.result);
  }
  return s.doc;
}

// The read-only mapping protocol over a result's JSON fields; `to_dict`
// is the command line's JSON document itself, parsed.
template <typename T, typename ToDict>
void BindFields(py::class_<T>& c, ToDict to_dict) {
  c.def("__getitem__", [](T& x, const py::object& key) { return Doc(x)[key]; })
      .def("__iter__", [](T& x) { return Doc(x).attr("__iter__")(); })
      .def("__len__", [](T& x) { return py::len(Doc(x)); })
      .def("__contains__", [](T& x, const py::object& key) { return Doc(x).contains(key); })
      .def("keys", [](T& x) { return Doc(x).attr("keys")(); })
      .def("values", [](T& x) { return Doc(x).attr("values")(); })
      .def("items", [](T& x) { return Doc(x).attr("items")(); })
      .def("get", [](T& x, const py::object& key, const py::object& otherwise) { return Doc(x).attr("get")(key, otherwise); },
           py::arg("key"), py::arg("default") = py::none())
      .def("to_dict", [to_dict](const T& x) { return Loads(to_dict(x)); },
           "The command line's JSON document, as a plain dict")
      .def("__repr__", [](T& x) {
        return "<ionn." + std::string(py::str(py::type::of(py::cast(&x)).attr("__name__"))) + " " +
               std::string(py::str(Doc(x)["format"])) + ">";
      });
  py::module_::import("collections.abc").attr("Mapping").attr("register")(c);
}

// ionn.Client: a live client, run as `ionn client` runs.
struct PyClient {
  ModelPtr model;
  ClientOptions options;
  py::object plan;  // a name, a plan or a function (see ToPlan)
  std::string granularity = "layer";
  RunSetting setting;
  bool ignore_held = false;
  double client_slowdown = 0;  // > 0: plan with, and pad local work to, this many times the profile's times
  int slices = 1;              // as `ionn client --slices`: 1 none, 0 auto
  std::string replan;          // "passive", "off", or empty: passive where it can re-plan (as `ionn client`)
};

py::dict RunPyClient(PyClient& c, const py::object& x, int queries, double duration_s, bool verify, uint64_t seed,
                     const py::object& arrivals, int max_queue, double deadline_ms) {
  const Graph& g = c.model->graph;
  if (!c.model->with_weights) throw py::value_error("the model was loaded without weights (weights=False)");
  if (queries != -1) CheckRange(queries, 1, 1e8, "queries (-1: the paper's protocol)");
  if (duration_s != -1) CheckRange(duration_s, 0.001, 1e7, "duration_s (-1: no limit)");
  ClientOptions o = c.options;
  o.arrivals = ToArrivals(arrivals, max_queue);
  if (deadline_ms != -1) CheckRange(deadline_ms, 0, 1e7, "deadline_ms (-1: none)");
  o.deadline_ms = deadline_ms;
  o.inputs = Inputs(*c.model, x, seed);
  o.max_queries = queries;
  o.duration_ms = duration_s > 0 ? duration_s * 1000 : -1;
  if (c.options.client_profile.order.empty()) {  // measured at the first run, as `ionn client --profile-now`
    py::gil_scoped_release release;
    auto engine = Value(Engine::Create(g, EngineOptions{o.threads}));
    c.options.client_profile = ProfileFromTimes(g, Value(engine->ProfileLayers(o.inputs, 2, 7)), false);
    o.client_profile = c.options.client_profile;
  }
  if (c.client_slowdown > 0) {  // as `ionn client --client-slowdown`
    for (auto& [name, row] : o.client_profile.rows) {
      if (row.client_ms) row.client_ms = *row.client_ms * c.client_slowdown;
    }
    o.emulate_profile = true;
  }
  // The planner, when it is Python's, runs in the client's threads: with
  // the interpreter held, its exception kept to raise here.
  std::optional<py::error_already_set> raised;
  if (py::isinstance<py::str>(c.plan)) {
    o.planner.algorithm = c.plan.cast<std::string>();
    o.planner.granularity = Value(ParseGranularity(c.granularity));
  } else {
    py::object plan = c.plan;
    const std::string granularity = c.granularity;
    o.plan_function = [plan, granularity, &raised](const CostGraph& costs) -> Result<UploadPlan> {
      py::gil_scoped_acquire hold;
      try {
        return *ToPlan(std::make_shared<CostGraph>(costs), plan, granularity);
      } catch (py::error_already_set& e) {
        if (!raised) raised = e;
        return Status::Invalid(e.what());
      } catch (const std::exception& e) {
        return Status::Invalid(e.what());  // RunClient says whose
      }
    };
  }
  // Re-planning as `ionn client --replan` (ReplanFlags::Resolve): passive
  // by default where the planner plans an exact upload; asked for where it
  // cannot, refused naming why.
  const std::string why_not = o.plan_function ? "re-planning needs the planner, and the plan is made in Python"
                                              : WhyNoReplan(o.upload_encoding, o.planner.algorithm);
  if (c.replan == "passive" && !why_not.empty()) throw py::value_error("replan \"passive\": " + why_not);
  o.replan.mode = c.replan == "off" || !why_not.empty() ? ReplanMode::kOff : ReplanMode::kPassive;
  o.replan.rtt_ms = o.link.rtt_ms;
  o.replan.penalties = o.planner.penalties;
  // slices: the run uploads and computes the sliced model (SliceForClient,
  // as `ionn client --slices`); verify still checks the whole model.
  const auto plan_for = [&o](const CostGraph& costs) {
    return o.plan_function ? o.plan_function(costs) : MakePlan(costs, o.planner);
  };
  Result<ClientSlices> cut = SliceForClient(g, c.slices, &o, plan_for);
  if (raised) {  // the Python planner's own exception, before any other
    raised->restore();
    throw py::error_already_set();
  }
  const ClientSlices sliced = Value(std::move(cut));
  const Graph& model = sliced.model ? *sliced.model : g;
  std::optional<OutputCheck> verified;
  if (verify) {
    py::gil_scoped_release release;
    auto engine = Value(Engine::Create(g, EngineOptions{o.threads}));
    verified.emplace(Value(engine->RunAll(o.inputs)));
  }
  auto check = [&](const ClientQuery& q, const TensorMap& outputs) {
    if (verified) (*verified)(q, outputs);
  };
  Result<ClientResult> r = Status::Internal("not run");
  {
    py::gil_scoped_release release;
    r = RunClient(model, o, nullptr, check);
  }
  o.plan_function = nullptr;  // holds `plan`: released with the interpreter held
  if (raised) {
    raised->restore();
    throw py::error_already_set();
  }
  ClientResult result = Value(std::move(r));
  ClientReportSetting report;
  report.run = c.setting;
  report.run.slices = sliced.slices;
  report.ignore_held = c.ignore_held;
  report.arrivals = ArrivalsName(o.arrivals);
  report.deadline_ms = o.deadline_ms;
  report.emulated_profile = o.emulate_profile;
  if (verified) verified->Report(&report);
  py::dict d;
  d["json"] = ClientResultToJson(model, result, report).dump();
  d["trace"] = ClientTraceCsv(result);
  py::dict outputs;
  for (auto& [name, t] : result.last_outputs) outputs[py::str(name)] = ToNumpy(std::move(t));
  d["outputs"] = outputs;
  return d;
}

}  // namespace
}  // namespace ionn

PYBIND11_MODULE(_ionn, m) {
  using namespace ionn;
  m.doc() = "ionn's C++ core; use the package `ionn`, which wraps it";
  m.attr("__version__") = kVersion;
  m.attr("default_data_dir") = IONN_DEFAULT_DATA_DIR;

  py::class_<Model, ModelPtr>(m, "Model", "A DNN model: layers, shapes and (when loaded with them) weights")
      .def_property_readonly("name", [](const Model& x) { return x.graph.name; })
      .def_property_readonly("layers", [](const Model& x) { return Layers(x.graph); },
                             "Per layer: name, kind, output_shape, weight_bytes")
      .def_property_readonly("inputs", [](const Model& x) {
        py::dict d;
        for (const auto& in : x.graph.inputs) d[py::str(in.name)] = std::vector<int64_t>(in.shape.begin(), in.shape.end());
        return d;
      }, "Input name -> shape")
      .def_property_readonly("outputs", [](const Model& x) { return x.graph.outputs; })
      .def("__repr__", [](const Model& x) {
        return "<ionn.Model '" + x.graph.name + "', " + std::to_string(x.graph.layers.size()) + " layers>";
      });

  py::class_<CostGraph, Costs>(m, "Costs", "A cost graph (ionn-costs/1): per layer client, server and upload times")
      .def_property_readonly("layer_names", [](const CostGraph& c) {
        std::vector<std::string> names;
        for (int k = 0; k < c.num_layers(); ++k) names.push_back(c.layer(k).name);
        return names;
      }, "The layers in model order (a topological order)")
      .def("to_json", [](const CostGraph& c) { return CostGraphToJson(c); },
           "The cost graph as `ionn costs --format json` writes it: a file `--costs` takes")
      .def("to_dict", [](const CostGraph& c) { return Loads(CostGraphToJson(c)); },
           "The cost graph's fields (format, inputs, outputs, layers with their times, ...)")
      .def("__repr__", [](const CostGraph& c) { return "<ionn.Costs, " + std::to_string(c.num_layers()) + " layers>"; });

  py::class_<PyPlan> plan(m, "Plan",
                          "An upload plan: the fields of `ionn plan --format json` (partitions with their layers, "
                          "upload_ms, uploaded_at_ms and latency_ms, ...), a read-only mapping");
  BindFields(plan, [](const PyPlan& p) { return Json(p); });
  plan.def("to_json", [](const PyPlan& p) { return Json(p); },
           "The plan as `ionn plan --format json` writes it: a file `ionn simulate --plan`, `ionn client --plan` "
           "and `ionn experiment --plan` take");

  py::class_<PySim> sim(m, "Simulation",
                        "A simulated run: the fields of `ionn simulate --format json`, a read-only mapping; its "
                        "queries are read-only numpy arrays (arrival_ms, start_ms, end_ms, latency_ms, "
                        "partitions_uploaded, during_upload, exact)");
  BindFields(sim, [](const PySim& s) { return Json(s, /*with_queries=*/true); });

  m.def("load_model", &LoadPyModel, py::arg("path_or_zoo_name"), py::arg("input_shape") = py::none(),
        py::arg("weights") = true);
  m.def(
      "as_uploaded",
      [](const Model& model, const std::string& encoding, const std::string& phase) {
        if (!model.with_weights) throw py::value_error("the model was loaded without weights (weights=False)");
        const UploadEncoding e = Value(ParseUploadEncoding(encoding));
        if (phase != "whole" && phase != "high") throw py::value_error("phase must be \"whole\" or \"high\"");
        if (phase == "high" && e != UploadEncoding::kProgressive) {
          throw py::value_error("phase \"high\" is progressive's (upload_encoding=\"progressive\")");
        }
        const UnitPhase p = phase == "high" ? UnitPhase::kHigh : EncodingPhases(e).back();
        Graph g;
        {
          py::gil_scoped_release release;
          g = Value(GraphAsDecoded(model.graph, e, p));
        }
        return std::make_shared<Model>(Model{std::move(g), model.given + " as " + encoding + "/" + phase, true});
      },
      py::arg("model"), py::arg("upload_encoding"), py::arg("phase"));

  m.def(
      "costs",
      [](const Model& model, const std::string& client_profile, const std::string& server_profile,
         const std::string& server_regression, bool paper_profiles, const std::string& profile_dir, double uplink_mbps,
         std::optional<double> downlink_mbps, double rtt_ms, const std::string& upload_encoding, int slices) {
        const UploadEncoding encoding = Value(ParseUploadEncoding(upload_encoding));
        CheckRange(slices, 1, 64, "slices (1: none)");
        if (encoding == UploadEncoding::kLossless && !model.with_weights) {
          throw py::value_error("upload_encoding 'lossless' sizes the weights' compressed bytes: load the model "
                                "with its weights");
        }
        const LinkSpec link = CheckedLink(uplink_mbps, downlink_mbps, rtt_ms);
        const CostGraph fp32 = Value(LoadModelCosts(
            model.graph, Sources(client_profile, server_profile, server_regression, paper_profiles, profile_dir), link));
        const std::vector<LayerSlices> cut = ChooseSlices(model.graph, SliceOptions{slices});
        const Graph sliced = Value(SliceGraph(model.graph, cut));
        return Value(EncodeUploads(Value(SliceCosts(fp32, cut, link.rtt_ms)), sliced, encoding, link));
      },
      py::arg("model"), py::kw_only(), py::arg("client_profile"), py::arg("server_profile"),
      py::arg("server_regression"), py::arg("paper_profiles"), py::arg("paper_profile_dir"), py::arg("uplink_mbps"),
      py::arg("downlink_mbps"), py::arg("rtt_ms"), py::arg("upload_encoding"), py::arg("slices"));
  m.def("read_costs", [](const std::string& path) { return Value(ReadCostGraphFile(path)); }, py::arg("path"));

  m.def(
      "plan",
      [](const Costs& costs, const py::object& given, const std::string& granularity) {
        return PyPlan{costs, ToPlan(costs, given, granularity), {}};
      },
      py::arg("costs").none(false), py::arg("algorithm") = "recursive-efficiency", py::arg("granularity") = "layer",
      "The plan, as `ionn plan --format json` writes it. `algorithm` may also be a plan of your own or a planner "
      "function (see the package's help)");

  m.def(
      "simulate",
      [](const Costs& costs, const py::object& given, const std::string& link_sharing, double window_ms,
         const std::string& granularity, const py::object& arrivals, int max_queue, double deadline_ms) {
        PlanPtr plan = ToPlan(costs, given, granularity);
        SimOptions o;
        o.sharing = Value(ParseLinkSharing(link_sharing));
        if (window_ms != -1) CheckRange(window_ms, 0, 1e12, "window_ms (-1: the all-at-once upload time)", true);
        o.window_ms = window_ms;
        o.arrivals = ToArrivals(arrivals, max_queue);
        if (deadline_ms != -1) CheckRange(deadline_ms, 0, 1e7, "deadline_ms (-1: none)");
        o.deadline_ms = deadline_ms;
        Result<SimResult> simulated = Status::Internal("not simulated");
        {
          std::optional<py::gil_scoped_release> release;
          if (WorthReleasing(*costs)) release.emplace();
          simulated = Simulate(*costs, *plan, o);
        }
        SimResult r = Value(std::move(simulated));
        return PySim{costs, std::move(plan), std::move(r), LinkSharingName(o.sharing), {}};
      },
      py::arg("costs").none(false), py::arg("plan") = "recursive-efficiency", py::arg("link_sharing") = "none",
      py::arg("window_ms") = -1.0, py::arg("granularity") = "layer", py::arg("arrivals") = "back-to-back",
      py::arg("max_queue") = -1, py::arg("deadline_ms") = -1.0,
      "The simulation, as `ionn simulate --format json` writes it; `plan` as for ionn.plan. window_ms -1: the "
      "all-at-once upload time. arrivals: \"back-to-back\" (the paper), \"periodic:FPS\", "
      "\"poisson:RATE_PER_S[:SEED]\", \"trace:FILE\" or a list of arrival times in ms; max_queue: waiting "
      "queries kept (the oldest dropped past it); deadline_ms: report the share of queries that met it");

  m.def(
      "run",
      [](const Model& model, const py::object& x, int threads) {
        if (!model.with_weights) throw py::value_error("the model was loaded without weights (weights=False)");
        TensorMap inputs = Inputs(model, x, 1);
        TensorMap out;
        {
          py::gil_scoped_release release;  // building the engine too: a large model takes a while
          auto engine = Value(Engine::Create(model.graph, EngineOptions{threads}));
          out = Value(engine->RunAll(inputs));
        }
        py::dict outputs;
        for (const auto& name : model.graph.outputs) outputs[py::str(name)] = ToNumpy(std::move(out.at(name)));
        return outputs;
      },
      py::arg("model"), py::arg("x"), py::arg("threads"));

  m.def(
      "profile",
      [](const Model& model, const py::object& x, int threads, int warmup, int repeats, uint64_t seed) {
        if (!model.with_weights) throw py::value_error("the model was loaded without weights (weights=False)");
        if (warmup < 0 || repeats < 1) throw py::value_error("warmup >= 0 and repeats >= 1");
        TensorMap inputs = Inputs(model, x, seed);
        std::vector<LayerTimes> times;
        {
          py::gil_scoped_release release;
          auto engine = Value(Engine::Create(model.graph, EngineOptions{threads}));
          times = Value(engine->ProfileLayers(inputs, warmup, repeats));
        }
        nlohmann::json doc = ProfileToJson(model.graph, times, threads, warmup, repeats);
        RunSetting setting;
        setting.model = model.given;
        AddRunSetting(setting, &doc);
        return doc.dump();
      },
      py::arg("model"), py::arg("x"), py::arg("threads"), py::arg("warmup"), py::arg("repeats"), py::arg("seed"));

  m.def(
      "seeded_input",
      [](const Model& model, uint64_t seed) {
        py::dict inputs;
        for (const auto& in : model.graph.inputs) inputs[py::str(in.name)] = ToNumpy(SeededInput(in.shape, seed));
        return inputs;
      },
      py::arg("model"), py::arg("seed"));

  py::class_<PyClient>(m, "RawClient")
      .def(py::init([](const ModelPtr& model, const std::string& servers, const py::object& plan,
                       const std::string& granularity, const std::string& client_profile,
                       const std::string& server_profile, bool paper_profiles, const std::string& profile_dir,
                       double client_slowdown, double uplink_mbps, std::optional<double> downlink_mbps,
                       double rtt_ms, int threads, bool ignore_held, const std::string& tls_ca_pem, bool tls,
                       const std::string& tls_server_name, const std::string& secret, int reconnects,
                       double deadline_s, int chunk_kib, const std::string& upload_encoding, int slices,
                       const std::string& replan) {
             auto c = std::make_unique<PyClient>();
             c->model = model;
             c->plan = plan;
             c->granularity = granularity;
             Value(ParseGranularity(granularity));
             ClientOptions& o = c->options;
             o.servers = Value(ParseServerList(servers));
             std::string profile = client_profile;
             if (paper_profiles && !client_profile.empty()) {
               throw py::value_error("client_profile excludes paper_profiles (as --client-profile excludes "
                                     "--paper-profiles)");
             }
             if (paper_profiles) {
               auto sources = PaperCostSources(model->graph.name, profile_dir);
               if (!sources.ok()) throw py::value_error("paper_profiles needs a zoo model: " + sources.status().message());
               if (profile.empty()) profile = sources->client_profile;
             }
             if (!profile.empty()) o.client_profile = Value(ReadProfileCsv(profile));
             if (!server_profile.empty()) o.server_profile = Value(ReadProfileCsv(server_profile));
             CheckRange(client_slowdown, 0, 1e6, "client_slowdown (0: none)");
             CheckRange(reconnects, 0, 1e6, "reconnects");
             CheckRange(deadline_s, 0.001, 1e6, "deadline_s");
             CheckRange(chunk_kib, 1, 65536, "chunk_kib");
             CheckRange(threads, 1, 1024, "threads");
             if (client_slowdown > 0 && paper_profiles) {
               throw py::value_error("client_slowdown excludes paper_profiles (as --client-slowdown excludes "
                                     "--paper-profiles): the paper's client has its published times");
             }
             c->client_slowdown = client_slowdown;
             o.link = CheckedLink(uplink_mbps, downlink_mbps, rtt_ms);
             o.threads = threads;
             o.use_held = !ignore_held;
             o.tls = tls || !tls_ca_pem.empty();
             o.tls_ca_pem = tls_ca_pem;
             o.tls_server_name = tls_server_name;
             o.secret = secret;
             o.max_reconnects = reconnects;
             o.call_deadline_ms = deadline_s * 1000;
             o.chunk_bytes = static_cast<size_t>(chunk_kib) * 1024;
             o.upload_encoding = Value(ParseUploadEncoding(upload_encoding));
             CheckRange(slices, 0, 64, "slices (1: none, 0: auto)");
             c->slices = slices;
             if (!replan.empty() && replan != "passive" && replan != "off") {
               throw py::value_error("replan '" + replan + "' (expected \"passive\", \"off\" or None)");
             }
             c->replan = replan;
             c->ignore_held = ignore_held;
             RunSetting& s = c->setting;
             s.model = model->given;
             s.uplink_mbps = uplink_mbps;
             s.downlink_mbps = downlink_mbps.value_or(uplink_mbps);
             s.rtt_ms = rtt_ms;
             s.client_profile = client_profile;
             s.server_profile = server_profile;
             s.paper_profiles = paper_profiles;
             s.client_slowdown = client_slowdown;
             return c;
           }),
           py::arg("model").none(false), py::arg("servers"), py::arg("plan"), py::arg("granularity"), py::arg("client_profile"),
           py::arg("server_profile"), py::arg("paper_profiles"), py::arg("paper_profile_dir"),
           py::arg("client_slowdown"), py::arg("uplink_mbps"), py::arg("downlink_mbps"), py::arg("rtt_ms"),
           py::arg("threads"), py::arg("ignore_held"), py::arg("tls_ca_pem"), py::arg("tls"),
           py::arg("tls_server_name"), py::arg("secret"), py::arg("reconnects"), py::arg("deadline_s"),
           py::arg("chunk_kib"), py::arg("upload_encoding"), py::arg("slices"), py::arg("replan"))
      .def("run", &RunPyClient, py::arg("x"), py::arg("queries"), py::arg("duration_s"), py::arg("verify"),
           py::arg("seed"), py::arg("arrivals"), py::arg("max_queue"), py::arg("deadline_ms"));

  // For bench/python_bench.py: the median time (us) of MakePlan + Simulate
  // in C++, the work ionn.plan + ionn.simulate do, timed here.
  m.def(
      "native_plan_simulate_us",
      [](const Costs& costs, const std::string& algorithm, int repeats) {
        PlannerOptions po;
        po.algorithm = algorithm;
        std::vector<double> us;
        for (int i = 0; i < repeats; ++i) {
          const auto t0 = std::chrono::steady_clock::now();
          {  // made and freed, as a Python caller's results are
            UploadPlan plan = Value(MakePlan(*costs, po));
            SimResult r = Value(Simulate(*costs, plan, SimOptions{}));
            if (r.queries.empty()) throw py::value_error("no queries");
          }
          const auto t1 = std::chrono::steady_clock::now();
          us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
        }
        return NearestRank(us, 0.5);
      },
      py::arg("costs").none(false), py::arg("algorithm"), py::arg("repeats"));
}
