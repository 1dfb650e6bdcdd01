#include "ionn/replan.h"

namespace ionn {

const char* ReplanModeName(ReplanMode mode) {
  switch (mode) {
    case ReplanMode::kOff: return "off";
    case ReplanMode::kPassive: return "passive";
    case ReplanMode::kOracle: return "oracle";
  }
  return "?";
}

Result<ReplanMode> ParseReplanMode(const std::string& name) {
  for (ReplanMode m : {ReplanMode::kOff, ReplanMode::kPassive, ReplanMode::kOracle}) {
    if (name == ReplanModeName(m)) return m;
  }
  return Status::Invalid("unknown re-planning '" + name.substr(0, 40) + "' (expected passive, off or oracle)");
}

void RateEstimator::Add(double t_ms, double total) {
  samples_.emplace_back(t_ms, total);
  // Keep the newest sample at least a window old, as the window's start.
  while (samples_.size() > 2 && samples_[1].first <= t_ms - window_ms_) samples_.pop_front();
}

double RateEstimator::Estimate() const {
  if (samples_.size() < 2) return -1;
  const auto& [t0, c0] = samples_.front();
  const auto& [t1, c1] = samples_.back();
  const double span = t1 - t0;
  if (!(span >= window_ms_ / 4) || !(span > 0)) return -1;
  return (c1 - c0) / span;
}

Result<UploadPlan> ReplanRemaining(const CostGraph& graph, const LayerMask& held, const PlannerOptions& planner) {
  return MakePlanWithHeld(graph, held, planner);
}

}  // namespace ionn
