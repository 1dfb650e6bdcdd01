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
                                                 "recursive-efficiency", "throughput-search", "window-search"};
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
  if (graph.upload_encoding() == UploadEncoding::kProgressive) {
    // The planner orders the high halves (what makes layers runnable) on a
    // graph where each layer uploads in half its time; the low halves
    // follow in the same order. Neither changes a query's latency.
    std::vector<double> half(graph.num_layers());
    for (int k = 0; k < graph.num_layers(); ++k) half[k] = graph.layer(k).upload_ms / 2;
    IONN_ASSIGN_OR_RETURN(const CostGraph highs, graph.WithUploads(UploadEncoding::kExact, half));
    IONN_ASSIGN_OR_RETURN(const UploadPlan planned, MakePlan(highs, options));
    std::vector<std::vector<int>> parts;
    std::vector<UnitPhase> phases;
    for (UnitPhase phase : {UnitPhase::kHigh, UnitPhase::kLow}) {
      for (const Partition& p : planned.partitions) parts.push_back(p.layers), phases.push_back(phase);
    }
    return EvaluatePartitions(graph, options.algorithm, options.granularity, std::move(parts), 0, &phases);
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
  } else if (options.algorithm == "window-search") {
    unit_parts = PlanWindowSearch(unit_model, PlanEfficiency(unit_model, /*recursive=*/true), AllAtOnceUploadMs(graph));
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
                                      std::vector<std::vector<int>> layer_parts, int free_partitions,
                                      const std::vector<UnitPhase>* phases) {
  const int n = graph.num_layers();
  const int num_parts = static_cast<int>(layer_parts.size());
  if (free_partitions < 0 || free_partitions > num_parts) {
    return Status::Invalid("partitions: " + std::to_string(free_partitions) + " free partitions of " +
                           std::to_string(layer_parts.size()));
  }
  if (phases && static_cast<int>(phases->size()) != num_parts) {
    return Status::Invalid("partitions: " + std::to_string(phases->size()) + " phases for " +
                           std::to_string(num_parts) + " partitions");
  }
  const auto phase_of = [&](int p) { return phases ? (*phases)[p] : UnitPhase::kWhole; };
  // Per layer: 1 once whole, 2 once high, 3 once high then low.
  std::vector<int> seen(n, 0);
  for (int p = 0; p < num_parts; ++p) {
    const std::string where = "partitions: partition " + std::to_string(p);
    if (layer_parts[p].empty()) return Status::Invalid(where + " is empty");
    const UnitPhase phase = phase_of(p);
    if (phase != UnitPhase::kWhole && graph.upload_encoding() != UploadEncoding::kProgressive) {
      return Status::Invalid(where + " is a '" + UnitPhaseName(phase) + "' half, and the upload encoding is '" +
                             UploadEncodingName(graph.upload_encoding()) + "', not progressive");
    }
    if (phase != UnitPhase::kWhole && p < free_partitions) return Status::Invalid(where + " is free and a half");
    if (phase == UnitPhase::kWhole && p >= free_partitions &&
        graph.upload_encoding() == UploadEncoding::kProgressive) {
      return Status::Invalid(where + " is a whole upload, and a progressive upload sends halves: give each "
                             "partition its \"phase\", \"high\" or \"low\"");
    }
    for (int k : layer_parts[p]) {
      if (k < 0 || k >= n) return Status::Invalid(where + ": layer " + std::to_string(k) + " is out of range");
      const int want = phase == UnitPhase::kLow ? 2 : 0;
      if (seen[k] != want) {
        return Status::Invalid(where + ": layer '" + graph.layer(k).name + "' " +
                               (phase == UnitPhase::kLow ? "has no high half before" : "is in two partitions"));
      }
      seen[k] = phase == UnitPhase::kWhole ? 1 : phase == UnitPhase::kHigh ? 2 : 3;
    }
  }
  for (int k = 0; k < n; ++k) {
    if (!seen[k]) return Status::Invalid("partitions: layer '" + graph.layer(k).name + "' is in none");
    if (seen[k] == 2) return Status::Invalid("partitions: layer '" + graph.layer(k).name + "' has no low half");
  }
  const LatencyModel model(graph);
  UploadPlan plan;
  plan.algorithm = algorithm;
  plan.encoding = graph.upload_encoding();
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
    p.phase = phase_of(static_cast<int>(plan.partitions.size()));
    if (static_cast<int>(plan.partitions.size()) < free_partitions) {
      p.upload_ms = 0;
    } else if (p.phase == UnitPhase::kWhole) {
      p.upload_ms = graph.UploadMs(layers);
    } else {
      p.upload_ms = graph.partition_overhead_ms();
      for (int k : layers) p.upload_ms += graph.layer(k).upload_ms / 2;
    }
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
  std::vector<double> upload_ms(n);
  for (int k = 0; k < n; ++k) upload_ms[k] = held[k] ? 0 : graph.layer(k).upload_ms;
  IONN_ASSIGN_OR_RETURN(CostGraph free_held, graph.WithUploads(graph.upload_encoding(), upload_ms));
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
  std::vector<UnitPhase> phases = {UnitPhase::kWhole};
  for (int k = 0; k < n; ++k) {
    if (held[k]) parts[0].push_back(k);
  }
  for (const Partition& p : planned.partitions) {
    std::vector<int> rest;
    for (int k : p.layers) {
      if (!held[k]) rest.push_back(k);
    }
    if (!rest.empty()) parts.push_back(std::move(rest)), phases.push_back(p.phase);
  }
  return EvaluatePartitions(graph, planned.algorithm, planned.granularity, std::move(parts), /*free_partitions=*/1,
                            &phases);
}

bool ExactInTheEnd(const CostGraph& graph, const UploadPlan& plan) {
  const LayerMask last = ExactLayersAfter(graph, plan).back();
  return std::find(last.begin(), last.end(), 0) == last.end();
}

std::vector<LayerMask> ExactLayersAfter(const CostGraph& graph, const UploadPlan& plan) {
  const int n = graph.num_layers();
  const bool lossy = IsLossyForGood(plan.encoding);
  LayerMask exact(n, 0);
  for (int k = 0; k < n; ++k) exact[k] = graph.layer(k).upload_ms == 0;
  std::vector<LayerMask> after = {exact};
  for (const Partition& p : plan.partitions) {
    const bool whole_exact = p.phase == UnitPhase::kLow || (p.phase == UnitPhase::kWhole && (!lossy || p.upload_ms == 0));
    if (whole_exact) {
      for (int k : p.layers) exact[k] = 1;
    }
    after.push_back(exact);
  }
  return after;
}

}  // namespace ionn
