// `ionn profile`: per-layer latency of a model on this machine, and
// `ionn calibrate`: IONN's per-layer-type server prediction functions
// t = a*X + b fitted by least squares to microbenchmarks on this machine.
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "ionn/engine.h"
#include "ionn/model_costs.h"
#include "ionn/model_source.h"

namespace ionn::cli {

Action RegisterProfile(CLI::App& app) {
  struct Args {
    std::string model, zoo, column = "client", format = "csv", out;
    int threads = 1, warmup = 3, repeats = 15;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("profile", "Measure every layer's latency on this machine (median of repeats)");
  cmd->add_option("model", args->model, "Model file (.onnx)");
  cmd->add_option("--zoo", args->zoo, "A zoo model instead of a file");
  cmd->add_option("--threads", args->threads, "Engine threads")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--warmup", args->warmup, "Runs before timing")->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--repeats", args->repeats, "Timed runs per layer")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--column", args->column, "Which CSV column to fill: client or server")
      ->capture_default_str()->check(CLI::IsMember({"client", "server"}));
  cmd->add_option("--format", args->format, "csv (layer,client_ms,server_ms), json or table")
      ->capture_default_str()->check(CLI::IsMember({"csv", "json", "table"}));
  cmd->add_option("-o,--output", args->out, "Output file (default: standard output)");
  return [args]() {
    auto g = LoadModel(args->model, args->zoo, /*with_weights=*/true);
    if (!g.ok()) return Fail(g.status());
    std::fprintf(stderr, "profile: %s, %zu layers, %d thread(s), %d warm-up + %d timed runs per layer\n",
                 g->name.c_str(), g->layers.size(), args->threads, args->warmup, args->repeats);
    auto engine = Engine::Create(*g, EngineOptions{args->threads});
    if (!engine.ok()) return Fail(engine.status());
    TensorMap inputs;
    for (const auto& in : g->inputs) inputs[in.name] = SeededInput(in.shape, 1);
    auto t = (*engine)->ProfileLayers(inputs, args->warmup, args->repeats);
    if (!t.ok()) return Fail(t.status());
    std::vector<double> median;
    for (const auto& x : *t) median.push_back(x.median_ms);
    std::string text;
    if (args->format == "csv") {
      text = args->column == "client" ? ProfileToCsv(*g, median, {}) : ProfileToCsv(*g, {}, median);
    } else if (args->format == "json") {
      nlohmann::json doc = {{"model", g->name}, {"threads", args->threads}, {"repeats", args->repeats}};
      for (size_t k = 0; k < g->layers.size(); ++k) {
        doc["layers"].push_back({{"layer", g->layers[k].name}, {"kind", LayerKindName(g->layers[k].kind)},
                                 {"median_ms", (*t)[k].median_ms}, {"min_ms", (*t)[k].min_ms}, {"max_ms", (*t)[k].max_ms}});
      }
      text = doc.dump(1) + "\n";
    } else {
      std::ostringstream out;
      char line[256];
      double total = 0;
      std::snprintf(line, sizeof line, "%-36s %-18s %11s %11s %11s\n", "layer", "kind", "median ms", "min ms", "max ms");
      out << line;
      for (size_t k = 0; k < g->layers.size(); ++k) {
        std::snprintf(line, sizeof line, "%-36s %-18s %11.4f %11.4f %11.4f\n", g->layers[k].name.c_str(),
                      LayerKindName(g->layers[k].kind), (*t)[k].median_ms, (*t)[k].min_ms, (*t)[k].max_ms);
        out << line;
        total += (*t)[k].median_ms;
      }
      std::snprintf(line, sizeof line, "%-36s %-18s %11.4f\n", "total", "", total);
      out << line;
      text = out.str();
    }
    if (args->out.empty()) {
      std::cout << text;
      return 0;
    }
    Status s = WriteTextFile(args->out, text);
    return s.ok() ? 0 : Fail(s);
  };
}

Action RegisterCalibrate(CLI::App& app) {
  struct Args {
    std::string out;
    int threads = 1, repeats = 7;
    bool quick = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "calibrate", "Fit the server's per-layer-type prediction functions t = a*X + b from microbenchmarks here");
  cmd->add_option("-o,--output", args->out, "CSV layer_type,a_ms_per_unit,b_ms (default: standard output)");
  cmd->add_option("--threads", args->threads, "Engine threads")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--repeats", args->repeats, "Timed runs per configuration")->capture_default_str();
  cmd->add_flag("--quick", args->quick, "Fewer, smaller configurations (for tests)");
  auto calibrate = [args]() -> Result<std::string> {
    std::map<std::string, std::vector<std::pair<double, double>>> samples;  // type -> (X, ms)
    auto measure = [&](Layer layer, const std::vector<Shape>& inputs) -> Status {
      Graph g;
      g.name = "calibrate";
      for (size_t i = 0; i < inputs.size(); ++i) {
        g.inputs.push_back({"x" + std::to_string(i), inputs[i]});
        layer.inputs.push_back("x" + std::to_string(i));
      }
      layer.name = "y";
      g.layers = {std::move(layer)};
      g.outputs = {"y"};
      IONN_RETURN_IF_ERROR(g.Finalize());
      auto engine = Engine::Create(g, EngineOptions{args->threads});
      if (!engine.ok()) return engine.status();
      TensorMap in;
      for (const auto& gi : g.inputs) in[gi.name] = SeededInput(gi.shape, 2);
      auto t = (*engine)->ProfileLayers(in, 2, args->repeats);
      if (!t.ok()) return t.status();
      samples[LayerKindCaffeType(g.layers[0].kind)].push_back({RegressionX(g, g.layers[0]), (*t)[0].median_ms});
      return Status::Ok();
    };
    std::vector<int> channels = {16, 64, 256}, sizes = {7, 14, 28, 56};
    if (args->quick) channels = {8, 16}, sizes = {7, 14};
    for (int c : channels) {
      for (int hw : sizes) {
        const Shape x = {1, c, hw, hw};
        for (int oc : channels) {
          for (int k : {1, 3}) {
            Layer conv;
            conv.kind = LayerKind::kConv;
            conv.out_channels = oc, conv.kernel_h = conv.kernel_w = k;
            conv.pad_top = conv.pad_left = conv.pad_bottom = conv.pad_right = k / 2;
            conv.weights = {{"w", {oc, c, k, k}, std::vector<float>(size_t(oc) * c * k * k, 0.01f)},
                            {"b", {oc}, std::vector<float>(oc, 0.0f)}};
            IONN_RETURN_IF_ERROR(measure(conv, {x}));
          }
        }
        Layer simple;
        for (LayerKind kind : {LayerKind::kRelu, LayerKind::kDropout, LayerKind::kSoftmax}) {
          simple.kind = kind;
          IONN_RETURN_IF_ERROR(measure(simple, {x}));
        }
        Layer pool;
        pool.kind = LayerKind::kMaxPool;
        pool.kernel_h = pool.kernel_w = 3, pool.stride_h = pool.stride_w = 2, pool.ceil_mode = true;
        IONN_RETURN_IF_ERROR(measure(pool, {x}));
        Layer lrn;
        lrn.kind = LayerKind::kLrn;
        IONN_RETURN_IF_ERROR(measure(lrn, {x}));
        for (LayerKind kind : {LayerKind::kBatchNorm, LayerKind::kScale}) {
          Layer bn;
          bn.kind = kind;
          bn.epsilon = kind == LayerKind::kScale ? 0.0f : 1e-5f;
          for (const char* w : {"g", "b", "m", "v"}) bn.weights.push_back({w, {c}, std::vector<float>(c, 1.0f)});
          IONN_RETURN_IF_ERROR(measure(bn, {x}));
        }
        Layer add;
        add.kind = LayerKind::kAdd;
        IONN_RETURN_IF_ERROR(measure(add, {x, x}));
        Layer cat;
        cat.kind = LayerKind::kConcat;
        IONN_RETURN_IF_ERROR(measure(cat, {x, x, x, x}));
      }
    }
    for (int in : args->quick ? std::vector<int>{64, 256} : std::vector<int>{256, 1024, 4096, 9216}) {
      for (int out : args->quick ? std::vector<int>{64, 256} : std::vector<int>{256, 1000, 4096}) {
        Layer fc;
        fc.kind = LayerKind::kFc;
        fc.out_channels = out;
        fc.weights = {{"w", {out, in}, std::vector<float>(size_t(out) * in, 0.01f)}, {"b", {out}, std::vector<float>(out, 0.0f)}};
        IONN_RETURN_IF_ERROR(measure(fc, {{1, in}}));
      }
    }
    std::ostringstream csv;
    csv << "layer_type,a_ms_per_unit,b_ms\n";
    std::fprintf(stderr, "%-14s %7s %14s %12s %8s\n", "type", "samples", "a ms/unit", "b ms", "R^2");
    for (const auto& [type, pts] : samples) {
      double mx = 0, mt = 0;
      for (auto [x, t] : pts) mx += x, mt += t;
      mx /= pts.size(), mt /= pts.size();
      double sxx = 0, sxt = 0, stt = 0;
      for (auto [x, t] : pts) sxx += (x - mx) * (x - mx), sxt += (x - mx) * (t - mt), stt += (t - mt) * (t - mt);
      const double a = sxx > 0 ? sxt / sxx : 0, b = mt - a * mx;
      const double r2 = sxx > 0 && stt > 0 ? sxt * sxt / (sxx * stt) : 0;
      char line[128];
      std::snprintf(line, sizeof line, "%s,%.6g,%.6g\n", type.c_str(), a, b);
      csv << line;
      std::fprintf(stderr, "%-14s %7zu %14.4g %12.5f %8.3f\n", type.c_str(), pts.size(), a, b, r2);
    }
    return csv.str();
  };
  return [args, calibrate]() {
    auto csv = calibrate();
    if (!csv.ok()) return Fail(csv.status());
    if (args->out.empty()) {
      std::cout << *csv;
      return 0;
    }
    Status s = WriteTextFile(args->out, *csv);
    return s.ok() ? 0 : Fail(s);
  };
}

}  // namespace ionn::cli
