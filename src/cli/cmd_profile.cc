// `ionn profile`: per-layer latency of a model on this machine, and
// `ionn calibrate`: IONN's per-layer-type server prediction functions
// t = a*X + b fitted by least squares to microbenchmarks on this machine
// (CalibrateServer, calibrate.h).
#include <cstdio>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "ionn/calibrate.h"
#include "ionn/engine.h"
#include "ionn/model_costs.h"

namespace ionn::cli {

Action RegisterProfile(CLI::App& app) {
  struct Args {
    ModelOptions model;
    InputOptions input;
    EngineFlags engine;
    OutputOptions out;
    std::string column = "client";
    int warmup = 3, repeats = 15;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("profile", "Measure every layer's latency on this machine (median of repeats)");
  args->model.Add(cmd);
  args->input.Add(cmd);
  args->engine.Add(cmd);
  cmd->add_option("--warmup", args->warmup, "Runs before timing")->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--repeats", args->repeats, "Timed runs per layer")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--column", args->column, "Which CSV column to fill: client or server")
      ->capture_default_str()->check(CLI::IsMember({"client", "server"}));
  args->out.Add(cmd, {"csv", "json", "table"});
  return args->out.Wrap([args]() {
    auto g = args->model.Load(/*with_weights=*/true);
    if (!g.ok()) return Fail(g.status());
    auto inputs = args->input.Get(*g);
    if (!inputs.ok()) return Fail(inputs.status());
    std::fprintf(stderr, "profile: %s, %zu layers, %d thread(s), %d warm-up + %d timed runs per layer\n",
                 g->name.c_str(), g->layers.size(), args->engine.threads, args->warmup, args->repeats);
    auto eo = args->engine.Get();
    if (!eo.ok()) return Fail(eo.status());
    auto engine = Engine::Create(*g, *eo);
    if (!engine.ok()) return Fail(engine.status());
    auto t = (*engine)->ProfileLayers(*inputs, args->warmup, args->repeats);
    if (!t.ok()) return Fail(t.status());
    std::vector<double> median;
    for (const auto& x : *t) median.push_back(x.median_ms);
    std::string text;
    if (args->out.format == "csv") {
      text = args->column == "client" ? ProfileToCsv(*g, median, {}) : ProfileToCsv(*g, {}, median);
    } else if (args->out.format == "json") {
      nlohmann::json doc = ProfileToJson(*g, *t, args->engine.threads, args->warmup, args->repeats);
      RunSetting setting;
      setting.model = args->model.Name();  // Load succeeded: a model was given
      setting.model_sha256 = args->model.FileSha256();
      AddRunSetting(setting, &doc);
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
    std::cout << text;
    return 0;
  });
}

Action RegisterCalibrate(CLI::App& app) {
  struct Args {
    EngineFlags engine;
    OutputOptions out;
    int repeats = 7;
    bool quick = false, winograd = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "calibrate", "Fit the server's per-layer-type prediction functions t = a*X + b from microbenchmarks here");
  args->engine.Add(cmd);
  args->out.Add(cmd, {});  // CSV layer_type,a_ms_per_unit,b_ms
  cmd->add_option("--repeats", args->repeats, "Timed runs per configuration")->capture_default_str();
  cmd->add_flag("--quick", args->quick, "Fewer, smaller configurations (for tests)");
  cmd->add_flag("--winograd", args->winograd, "Time convolutions as `ionn serve --winograd` runs them");
  return args->out.Wrap([args]() {
    CalibrationOptions options;
    options.winograd = args->winograd;
    auto eo = args->engine.Get();
    if (!eo.ok()) return Fail(eo.status());
    options.threads = eo->threads;
    options.backend = eo->backend;
    options.repeats = args->repeats;
    options.quick = args->quick;
    auto c = CalibrateServer(options);
    if (!c.ok()) return Fail(c.status());
    std::fprintf(stderr, "%-14s %7s %14s %12s %8s\n", "type", "samples", "a ms/unit", "b ms", "R^2");
    for (const auto& [type, stats] : c->fit.stats) {
      const auto [a, b] = c->fit.regression.by_type.at(type);
      std::fprintf(stderr, "%-14s %7d %14.4g %12.5f %8.3f\n", type.c_str(), stats.samples, a, b, stats.r_squared);
    }
    // A fit that predicts 0 ms or less for one of the layers it was fitted
    // on will do so for small layers of that type in any model.
    // (At either end of its samples: a negative slope fails at the largest.)
    for (const auto& [type, samples] : c->samples) {
      if (samples.empty() || !c->fit.regression.by_type.count(type)) continue;
      const auto [a, b] = c->fit.regression.by_type.at(type);
      double lo = samples.front().x, hi = lo;
      for (const auto& p : samples) lo = std::min(lo, p.x), hi = std::max(hi, p.x);
      for (const double x : {lo, hi}) {
        if (a * x + b > 0) continue;
        std::fprintf(stderr,
                     "ionn: warning: the fit for %s predicts %.4g ms at X = %.4g, one of its own samples; servers "
                     "floor predictions at 0 ms, so such %s layers will count as free\n",
                     type.c_str(), a * x + b, x, type.c_str());
        break;
      }
    }
    std::cout << RegressionToCsv(c->fit.regression);
    return 0;
  });
}

}  // namespace ionn::cli
