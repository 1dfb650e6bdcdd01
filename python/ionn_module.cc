// `import ionn`: the planners, the simulator and the engine from Python,
// with the command line's vocabulary. Every result is the dictionary of the
// JSON the command of the same name writes (PlanToJson, SimResultToJson),
// parsed: one implementation of every rule and every field name; the
// simulator's queries come as numpy arrays besides. Errors raise ValueError
// with the message the command line prints.
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <optional>
#include <string>

#include "ionn/cost_graph.h"
#include "ionn/engine.h"
#include "ionn/model_costs.h"
#include "ionn/model_source.h"
#include "ionn/plan.h"
#include "ionn/sim.h"
#include "ionn/version.h"

namespace py = pybind11;

namespace ionn {
namespace {

template <typename T>
T Value(Result<T> r) {
  if (!r.ok()) throw py::value_error(r.status().message());
  return std::move(r).value();
}

py::object Json(const std::string& text) { return py::module_::import("json").attr("loads")(text); }

// A model: its architecture, and its weights when it was loaded with them.
struct Model {
  Graph graph;
  bool with_weights = false;
};

Model LoadPyModel(const std::string& path_or_zoo, std::optional<std::vector<int64_t>> input_shape, bool weights) {
  OnnxImportOptions onnx;
  if (input_shape) onnx.input_shapes[""] = Shape(input_shape->begin(), input_shape->end());
  const bool file = path_or_zoo.find('/') != std::string::npos || path_or_zoo.find(".onnx") != std::string::npos;
  return Model{Value(LoadModel(file ? path_or_zoo : "", file ? "" : path_or_zoo, weights, onnx)), weights};
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

CostGraph PyCosts(const Model& model, const std::string& client_profile, const std::string& server_profile,
                  const std::string& server_regression, bool paper_profiles, const std::string& profile_dir,
                  double uplink_mbps, std::optional<double> downlink_mbps, double rtt_ms) {
  CostSources sources;
  sources.client_profile = client_profile;
  sources.server_profile = server_profile;
  sources.server_regression = server_regression;
  sources.paper_profiles = paper_profiles;
  sources.paper_profile_dir = profile_dir;
  return Value(LoadModelCosts(model.graph, sources, MakeLinkSpec(uplink_mbps, downlink_mbps.value_or(uplink_mbps),
                                                                 rtt_ms)));
}

// A plan from what Python gives: an algorithm's name, a plan (a list of
// partitions, each a list of layer names, or a dict with "partitions"), or
// a function of the cost graph that returns one.
UploadPlan ToPlan(const CostGraph& costs, const py::object& given, const std::string& granularity) {
  if (py::isinstance<py::str>(given)) {
    PlannerOptions o;
    o.algorithm = given.cast<std::string>();
    o.granularity = Value(ParseGranularity(granularity));
    return Value(MakePlan(costs, o));
  }
  py::object plan = given;
  if (PyCallable_Check(given.ptr())) plan = given(py::cast(costs));  // its own exception passes through
  py::object json = py::module_::import("json");
  std::string text;
  try {
    text = json.attr("dumps")(plan).cast<std::string>();
  } catch (const py::error_already_set&) {
    throw py::value_error("a plan is a list of partitions, each a list of layer names (not JSON-serialisable)");
  }
  return Value(PlanFromJson(costs, text));
}

}  // namespace
}  // namespace ionn

PYBIND11_MODULE(ionn, m) {
  using namespace ionn;
  m.doc() = "ionn: incremental offloading of neural networks (planners, simulator, engine)";
  m.attr("__version__") = kVersion;

  py::class_<Model>(m, "Model", "A DNN model: layers, shapes and (when loaded with them) weights")
      .def_property_readonly("name", [](const Model& x) { return x.graph.name; })
      .def_property_readonly("layers", [](const Model& x) { return Layers(x.graph); },
                             "Per layer: name, kind, output_shape, weight_bytes")
      .def_property_readonly("inputs", [](const Model& x) {
        py::dict d;
        for (const auto& in : x.graph.inputs) d[py::str(in.name)] = std::vector<int64_t>(in.shape.begin(), in.shape.end());
        return d;
      })
      .def("__repr__", [](const Model& x) {
        return "<ionn.Model '" + x.graph.name + "', " + std::to_string(x.graph.layers.size()) + " layers>";
      });

  py::class_<CostGraph>(m, "Costs", "A cost graph (ionn-costs/1): per layer client, server and upload times")
      .def_property_readonly("layer_names", [](const CostGraph& c) {
        std::vector<std::string> names;
        for (int k = 0; k < c.num_layers(); ++k) names.push_back(c.layer(k).name);
        return names;
      })
      .def("to_json", [](const CostGraph& c) { return Json(CostGraphToJson(c)); },
           "The cost graph as `ionn costs` writes it, as a dict")
      .def("__repr__", [](const CostGraph& c) { return "<ionn.Costs, " + std::to_string(c.num_layers()) + " layers>"; });

  m.def("load_model", &LoadPyModel, py::arg("path_or_zoo_name"), py::arg("input_shape") = py::none(),
        py::arg("weights") = true,
        "An ONNX file (a path) or a zoo model by name; input_shape for a model with symbolic input dimensions");

  m.def("costs", &PyCosts, py::arg("model"), py::kw_only(), py::arg("client_profile") = "",
        py::arg("server_profile") = "", py::arg("server_regression") = "", py::arg("paper_profiles") = false,
        py::arg("paper_profile_dir") = IONN_DEFAULT_DATA_DIR "/profiles/odroid-xu4_gtx1080ti/",
        py::arg("uplink_mbps") = 80.0, py::arg("downlink_mbps") = py::none(), py::arg("rtt_ms") = 0.0,
        "The cost graph of `model` as `ionn costs` builds it (profiles are CSV paths)");
  m.def("read_costs", [](const std::string& path) { return Value(ReadCostGraphFile(path)); }, py::arg("path"),
        "A cost graph file (ionn-costs/1)");

  m.def(
      "plan",
      [](const CostGraph& costs, const py::object& algorithm, const std::string& granularity) {
        return Json(PlanToJson(costs, ToPlan(costs, algorithm, granularity)));
      },
      py::arg("costs"), py::arg("algorithm") = "recursive-efficiency", py::arg("granularity") = "layer",
      "The plan as `ionn plan --format json` writes it (a dict); `algorithm` may also be a plan of your own "
      "(a list of partitions, each a list of layer names) or a function of the costs returning one");

  m.def(
      "simulate",
      [](const CostGraph& costs, const py::object& plan, const std::string& link_sharing, double window_ms,
         const std::string& granularity) {
        const UploadPlan p = ToPlan(costs, plan, granularity);
        SimOptions o;
        o.sharing = Value(ParseLinkSharing(link_sharing));
        o.window_ms = window_ms;
        const SimResult r = Value(Simulate(costs, p, o));
        RunSetting setting;
        setting.link_sharing = LinkSharingName(o.sharing);
        py::dict d = Json(SimResultToJson(costs, r, p, setting, /*with_queries=*/false));
        const size_t n = r.queries.size();
        py::array_t<double> start(n), end(n), latency(n);
        py::array_t<int> partitions(n);
        py::array_t<bool> during(n);
        for (size_t i = 0; i < n; ++i) {
          start.mutable_at(i) = r.queries[i].start_ms;
          end.mutable_at(i) = r.queries[i].end_ms;
          latency.mutable_at(i) = r.queries[i].latency_ms;
          partitions.mutable_at(i) = r.queries[i].partitions_uploaded;
          during.mutable_at(i) = r.queries[i].during_upload;
        }
        py::dict q;
        q["start_ms"] = start;
        q["end_ms"] = end;
        q["latency_ms"] = latency;
        q["partitions_uploaded"] = partitions;
        q["during_upload"] = during;
        d["queries"] = q;
        return d;
      },
      py::arg("costs"), py::arg("plan") = "recursive-efficiency", py::arg("link_sharing") = "none",
      py::arg("window_ms") = -1.0, py::arg("granularity") = "layer",
      "The simulation as `ionn simulate --format json` writes it (a dict), its queries as numpy arrays "
      "(start_ms, end_ms, latency_ms, partitions_uploaded, during_upload); `plan` as for ionn.plan");

  m.def(
      "run",
      [](const Model& model, py::array_t<float, py::array::c_style | py::array::forcecast> x, int threads) {
        if (!model.with_weights) throw py::value_error("the model was loaded without weights (weights=False)");
        if (model.graph.inputs.size() != 1) throw py::value_error("ionn.run takes a model with one input");
        const GraphInput& in = model.graph.inputs[0];
        Shape got(x.shape(), x.shape() + x.ndim());
        if (got != in.shape) {
          throw py::value_error("input of shape " + ShapeToString(got) + ", the model's input '" + in.name + "' is " +
                                ShapeToString(in.shape));
        }
        Tensor t{in.shape, std::vector<float>(x.data(), x.data() + x.size())};
        auto engine = Value(Engine::Create(model.graph, EngineOptions{threads}));
        TensorMap out;
        {
          py::gil_scoped_release release;
          out = Value(engine->RunAll({{in.name, std::move(t)}}));
        }
        const Tensor& y = out.at(model.graph.outputs[0]);
        py::array_t<float> result(std::vector<py::ssize_t>(y.shape.begin(), y.shape.end()));
        std::copy(y.data.begin(), y.data.end(), result.mutable_data());
        return result;
      },
      py::arg("model"), py::arg("x"), py::arg("threads") = 1,
      "The model's first output for input `x` (float32, the input's shape), computed here");

  m.def(
      "seeded_input",
      [](const Model& model, uint64_t seed) {
        const GraphInput& in = model.graph.inputs.at(0);
        const Tensor t = SeededInput(in.shape, seed);
        py::array_t<float> result(std::vector<py::ssize_t>(t.shape.begin(), t.shape.end()));
        std::copy(t.data.begin(), t.data.end(), result.mutable_data());
        return result;
      },
      py::arg("model"), py::arg("seed") = 1, "The seeded random input the command line uses (--seed)");
}
