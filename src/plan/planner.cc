#include <algorithm>

#include "ionn/plan.h"

namespace ionn {

double UploadPlan::total_upload_ms() const {
  double ms = 0;
  for (const auto& p : partitions) ms += p.upload_ms;
  return ms;
}

const std::vector<std::string>& PlannerNames() {
  static const std::vector<std::string> names = {"all-at-once", "original", "efficiency",
                                                 "recursive-efficiency", "throughput-search"};
  return names;
}

Result<UploadPlan> MakePlan(const CostGraph& graph, const PlannerOptions& options) {
  const auto& names = PlannerNames();
  if (std::find(names.begin(), names.end(), options.algorithm) == names.end()) {
    std::string known;
    for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
    return Status::Invalid("unknown algorithm '" + options.algorithm + "' (known: " + known + ")");
  }
  for (double p : options.penalties) {
    if (!(p >= 0)) return Status::Invalid("penalties must be numbers >= 0");
  }
  const UnitGraph units = MakeUnits(graph, options.granularity);
  const LatencyModel unit_model(units.units);
  UnitPartitions unit_parts;
  if (options.algorithm == "original") {
    unit_parts = PlanOriginal(unit_model, options.penalties);
  } else if (options.algorithm == "efficiency") {
    unit_parts = PlanEfficiency(unit_model, /*recursive=*/false);
  } else if (options.algorithm == "recursive-efficiency") {
    unit_parts = PlanEfficiency(unit_model, /*recursive=*/true);
  } else if (options.algorithm == "throughput-search") {
    unit_parts = PlanThroughputSearch(unit_model, PlanEfficiency(unit_model, /*recursive=*/true));
  } else {
    unit_parts = PlanAllAtOnce(unit_model);
  }

  const int n = graph.num_layers();
  LayerMask placed(n, 0);
  std::vector<std::vector<int>> layer_parts;
  for (const auto& up : unit_parts) {
    std::vector<int> layers;
    for (int u : up) {
      for (int k : units.layers_of_unit[u]) layers.push_back(k);
    }
    std::sort(layers.begin(), layers.end());
    for (int k : layers) placed[k] = 1;
    layer_parts.push_back(std::move(layers));
  }
  std::vector<int> tail;
  for (int k = 0; k < n; ++k) {
    if (!placed[k]) tail.push_back(k);
  }
  if (!tail.empty()) layer_parts.push_back(std::move(tail));

  const LatencyModel model(graph);
  UploadPlan plan;
  plan.algorithm = options.algorithm;
  // A graph of IONN blocks (e.g. `ionn costs --granularity block`) is
  // planned at block granularity whatever the options say.
  plan.granularity = graph.block_units() ? Granularity::kBlock : options.granularity;
  plan.latency_local_ms = model.LocalMs();
  plan.latency_optimal_ms = model.OptimalMs();
  LayerMask uploaded(n, 0);
  RunLatency latency(model);
  for (auto& layers : layer_parts) {
    for (int k : layers) uploaded[k] = 1;
    Partition p;
    p.upload_ms = graph.UploadMs(layers);
    latency.Update(uploaded);
    p.latency_ms = latency.base_ms();
    p.layers = std::move(layers);
    plan.partitions.push_back(std::move(p));
  }
  return plan;
}

}  // namespace ionn
