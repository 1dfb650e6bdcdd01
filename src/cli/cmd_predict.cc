#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>

#include "commands.h"
#include "ionn/model_costs.h"

namespace ionn::cli {

Action RegisterPredict(CLI::App& app) {
  struct Args {
    ModelOptions model;
    ProfileOptions profiles;
    OutputOptions out;
    std::string compare;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("predict", "Predict server layer times with per-layer-type functions t = a*X + b");
  args->model.Add(cmd);
  args->profiles.Add(cmd, kRegression);
  args->profiles.regression_option->required();
  cmd->add_option("--compare", args->compare, "A profile with measured server_ms: report the error per layer type")
      ->type_name("CSV")
      ->group(kProfileGroup);
  args->out.Add(cmd, {"table", "csv"});
  return args->out.Wrap([args]() {
    auto g = args->model.Load(/*with_weights=*/false);
    if (!g.ok()) return Fail(g.status());
    const std::string& regression = args->profiles.regression;
    auto reg = ReadRegressionCsv(regression);
    if (!reg.ok()) return Fail(reg.status());
    WarnNonPositivePredictions(*g, *reg, "--regression '" + regression + "'");
    std::optional<Profile> measured;
    if (!args->compare.empty()) {
      auto p = ReadProfileCsv(args->compare);
      if (!p.ok()) return Fail(p.status());
      measured = std::move(p).value();
      const bool any = std::any_of(g->layers.begin(), g->layers.end(), [&](const Layer& l) {
        auto it = measured->rows.find(l.name);
        return it != measured->rows.end() && it->second.server_ms.has_value();
      });
      if (!any) {
        return Fail(Status::Invalid("--compare '" + args->compare + "' has no server_ms for any layer of model '" +
                                    g->name + "' (measure them on the server: ionn profile MODEL --column server)"));
      }
    }
    std::vector<double> predicted;
    for (const auto& l : g->layers) {
      auto t = PredictServerMs(*g, l, *reg);
      if (!t.ok()) return Fail(t.status());
      predicted.push_back(*t);
    }
    if (args->out.format == "csv") {
      std::cout << ProfileToCsv(*g, {}, predicted);
    } else {
      std::printf("%-36s %-12s %14s %12s %12s\n", "layer", "type", "X", "predicted ms", "measured ms");
      for (size_t k = 0; k < g->layers.size(); ++k) {
        const Layer& l = g->layers[k];
        std::string m = "-";
        if (measured) {
          auto it = measured->rows.find(l.name);
          if (it != measured->rows.end() && it->second.server_ms) m = std::to_string(*it->second.server_ms);
        }
        std::printf("%-36s %-12s %14.4g %12.5f %12s\n", l.name.c_str(), LayerKindCaffeType(l.kind),
                    RegressionX(*g, l), predicted[k], m.c_str());
      }
    }
    if (measured) {
      struct Err { int n = 0; double abs = 0, rel = 0, measured = 0, predicted = 0; };
      std::map<std::string, Err> by_type;
      for (size_t k = 0; k < g->layers.size(); ++k) {
        auto it = measured->rows.find(g->layers[k].name);
        if (it == measured->rows.end() || !it->second.server_ms) continue;
        const double m = *it->second.server_ms;
        Err& e = by_type[LayerKindCaffeType(g->layers[k].kind)];
        ++e.n;
        e.abs += std::fabs(predicted[k] - m);
        e.rel += m > 0 ? std::fabs(predicted[k] - m) / m : 0;
        e.measured += m, e.predicted += predicted[k];
      }
      std::fprintf(stderr, "\nprediction error per layer type against %s\n", args->compare.c_str());
      std::fprintf(stderr, "%-14s %6s %14s %16s %14s %14s\n", "type", "layers", "mean abs ms", "mean rel error",
                   "sum measured", "sum predicted");
      for (const auto& [type, e] : by_type) {
        std::fprintf(stderr, "%-14s %6d %14.5f %15.1f%% %14.4f %14.4f\n", type.c_str(), e.n, e.abs / e.n,
                     100 * e.rel / e.n, e.measured, e.predicted);
      }
    }
    return 0;
  });
}

}  // namespace ionn::cli
