#include "ionn/replan.h"

#include <algorithm>

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

std::string WhyNoReplan(UploadEncoding encoding, const std::string& algorithm) {
  if (encoding != UploadEncoding::kExact && encoding != UploadEncoding::kLossless) {
    return std::string("re-planning handles exact uploads only (exact, lossless), not ") + UploadEncodingName(encoding);
  }
  const auto& names = PlannerNames();
  if (std::find(names.begin(), names.end(), algorithm) == names.end()) {
    std::string known;
    for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
    return "re-planning needs the plan's planner, and '" + algorithm.substr(0, 40) + "' is none of " + known +
           " (a plan made elsewhere has none)";
  }
  return "";
}

void RateEstimator::AddInterval(double end_ms, double duration_ms, double amount) {
  entries_.push_back({end_ms, duration_ms, amount});
  // Those that ended a window or more before the newest go.
  while (entries_.front().end_ms <= end_ms - window_ms_) entries_.pop_front();
  duration_sum_ = amount_sum_ = 0;
  for (const Entry& e : entries_) duration_sum_ += e.duration_ms, amount_sum_ += e.amount;
}

void RateEstimator::AddAlongside(double end_ms, double amount) { AddInterval(end_ms, 0, amount); }

double RateEstimator::Estimate() const {
  if (!(duration_sum_ >= window_ms_ / 2) || !(duration_sum_ > 0)) return -1;
  return std::max(0.0, amount_sum_ / duration_sum_);
}

Result<ReplannedUpload> ReplanUpload(const CostGraph& graph, const std::vector<std::vector<int>>& parts, int kept,
                                     double up_factor, double down_factor, double rtt_ms,
                                     const PlannerOptions& planner) {
  const int n = static_cast<int>(parts.size());
  if (kept < 0 || kept > n) return Status::Internal("ReplanUpload: more partitions kept than there are");
  IONN_ASSIGN_OR_RETURN(CostGraph at_rate, graph.WithLinkRates(up_factor, down_factor, rtt_ms));
  ReplannedUpload r;
  r.parts.assign(parts.begin(), parts.begin() + kept);
  LayerMask held(graph.num_layers(), 0);
  for (const auto& p : r.parts) {
    for (int k : p) held[k] = 1;
  }
  if (kept < n) {  // else only where queries run changes
    IONN_ASSIGN_OR_RETURN(UploadPlan plan, MakePlanWithHeld(at_rate, held, planner));
    const bool held_first = std::find(held.begin(), held.end(), 1) != held.end();
    for (size_t i = held_first ? 1 : 0; i < plan.partitions.size(); ++i) r.parts.push_back(plan.partitions[i].layers);
  }
  const LatencyModel model(at_rate);
  LayerMask uploaded(graph.num_layers(), 0);
  r.on_server_after.push_back(uploaded);  // nothing arrived: all here
  for (const auto& p : r.parts) {
    for (int k : p) uploaded[k] = 1;
    r.on_server_after.push_back(model.Best(uploaded).on_server);
  }
  return r;
}

}  // namespace ionn
