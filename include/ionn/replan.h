// Re-planning from what the upload tells (DESIGN.md, "Re-planning from the
// upload"): the client estimates the uplink's rate from the bytes the
// server has acknowledged and when, with no probe traffic, and when the
// estimate leaves a band around the rate its plan assumed, it plans the
// units not uploaded yet again, on top of those already uploaded, and
// places the next queries for the rate it now sees. One definition for the
// simulator and the client. Pure code: no I/O, no clocks.
#pragma once

#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "ionn/cost_graph.h"
#include "ionn/plan.h"
#include "ionn/status.h"

namespace ionn {

enum class ReplanMode {
  kOff,      // the plan made at the start, whatever the link does
  kPassive,  // re-plan from the estimate (the default)
  kOracle,   // re-plan from the true rate ahead (the simulator's bound; needs the trace)
};
const char* ReplanModeName(ReplanMode mode);
Result<ReplanMode> ParseReplanMode(const std::string& name);

// A link's rate from acknowledged progress: the progress (bytes, or any
// unit proportional to them) over the last `window_ms` of acknowledgements.
// Needs acknowledgements spanning at least a quarter of the window.
class RateEstimator {
 public:
  explicit RateEstimator(double window_ms = 1000) : window_ms_(window_ms) {}
  // `total` acknowledged by `t_ms` (both non-decreasing from call to call).
  void Add(double t_ms, double total);
  // Progress per ms over the window, or < 0 when the acknowledgements do
  // not span enough of it yet.
  double Estimate() const;
  double window_ms() const { return window_ms_; }

 private:
  double window_ms_;
  std::deque<std::pair<double, double>> samples_;  // (t_ms, total), oldest first
};

struct ReplanOptions {
  ReplanMode mode = ReplanMode::kPassive;
  // The planner is the plan's own (its algorithm and granularity), with
  // these penalties for "original".
  std::vector<double> penalties = PlannerOptions{}.penalties;
  double band = 0.25;      // re-plan when the estimate leaves [1 - band, 1 + band] x the rate planned for
  double window_ms = 1000; // RateEstimator's
  double ack_bytes = 256 * 1024;  // progress between acknowledgements the client sees
  double rtt_ms = 0;       // the round trip the cost graph's transfers include (rtt/2 each)
};

// Whether an estimate (a multiple of the rate the current plan assumed)
// leaves the band: then the client re-plans.
inline bool LeavesBand(double estimate_factor, double band) {
  return estimate_factor > 0 && (estimate_factor < 1 - band || estimate_factor > 1 + band);
}

// The plan for the units not in `held` (uploaded, or in flight) on
// `graph` (times at the rates now estimated): MakePlanWithHeld, the held
// layers its first, free partition.
Result<UploadPlan> ReplanRemaining(const CostGraph& graph, const LayerMask& held, const PlannerOptions& planner);

}  // namespace ionn
