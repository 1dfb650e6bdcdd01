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

  return EvaluatePartitions(graph, options.algorithm, options.granularity, std::move(layer_parts), 0);
}

Result<UploadPlan> EvaluatePartitions(const CostGraph& graph, const std::string& algorithm, Granularity granularity,
                                      std::vector<std::vector<int>> layer_parts, int free_partitions) {
  const int n = graph.num_layers();
  if (free_partitions < 0 || free_partitions > static_cast<int>(layer_parts.size())) {
    return Status::Invalid("partitions: " + std::to_string(free_partitions) + " free partitions of " +
                           std::to_string(layer_parts.size()));
  }
  std::vector<int> seen(n, 0);
  for (size_t p = 0; p < layer_parts.size(); ++p) {
    if (layer_parts[p].empty()) return Status::Invalid("partitions: partition " + std::to_string(p) + " is empty");
    for (int k : layer_parts[p]) {
      if (k < 0 || k >= n || seen[k]++) {
        return Status::Invalid("partitions: layer " + std::to_string(k) + " is out of range or in two partitions");
      }
    }
  }
  for (int k = 0; k < n; ++k) {
    if (!seen[k]) return Status::Invalid("partitions: layer '" + graph.layer(k).name + "' is in none");
  }
  const LatencyModel model(graph);
  UploadPlan plan;
  plan.algorithm = algorithm;
  // A graph of IONN blocks (e.g. `ionn costs --granularity block`) is
  // planned at block granularity whatever the options say.
  plan.granularity = graph.block_units() ? Granularity::kBlock : granularity;
  plan.latency_local_ms = model.LocalMs();
  plan.latency_optimal_ms = model.OptimalMs();
  LayerMask uploaded(n, 0);
  RunLatency latency(model);
  for (auto& layers : layer_parts) {
    for (int k : layers) uploaded[k] = 1;
    Partition p;
    p.upload_ms = static_cast<int>(plan.partitions.size()) < free_partitions ? 0 : graph.UploadMs(layers);
    latency.Update(uploaded);
    p.latency_ms = latency.base_ms();
    p.layers = std::move(layers);
    plan.partitions.push_back(std::move(p));
  }
  return plan;
}

Result<UploadPlan> MakePlanWithHeld(const CostGraph& graph, const LayerMask& held, const PlannerOptions& options) {
  const int n = graph.num_layers();
  if (static_cast<int>(held.size()) != n) return Status::Invalid("held layers: mask of the wrong size");
  if (std::find(held.begin(), held.end(), 1) == held.end()) return MakePlan(graph, options);
  // Plan the rest on a graph where held layers upload in no time: the
  // planners then value them as free and plan around them.
  std::vector<CostLayer> layers = graph.layers();
  for (int k = 0; k < n; ++k) {
    if (held[k]) layers[k].upload_ms = 0;
  }
  IONN_ASSIGN_OR_RETURN(CostGraph free_held,
                        CostGraph::Create(graph.inputs(), std::move(layers), graph.output_names(),
                                          graph.partition_overhead_ms(), graph.block_units()));
  IONN_ASSIGN_OR_RETURN(UploadPlan planned, MakePlan(free_held, options));
  return WithHeldFirst(graph, planned, held);
}

Result<UploadPlan> WithHeldFirst(const CostGraph& graph, const UploadPlan& planned, const LayerMask& held) {
  const int n = graph.num_layers();
  if (static_cast<int>(held.size()) != n) return Status::Invalid("held layers: mask of the wrong size");
  if (std::find(held.begin(), held.end(), 1) == held.end()) return planned;
  // Held layers move to a first partition of upload time 0: the server has
  // them from the start, which can only make every query's best placement
  // as fast or faster than the plan alone assumed.
  std::vector<std::vector<int>> parts(1);
  for (int k = 0; k < n; ++k) {
    if (held[k]) parts[0].push_back(k);
  }
  for (const Partition& p : planned.partitions) {
    std::vector<int> rest;
    for (int k : p.layers) {
      if (!held[k]) rest.push_back(k);
    }
    if (!rest.empty()) parts.push_back(std::move(rest));
  }
  return EvaluatePartitions(graph, planned.algorithm, planned.granularity, std::move(parts), /*free_partitions=*/1);
}

}  // namespace ionn
