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

// A link's rate from acknowledged progress: what crossed while the upload
// was sending, over that time, for the acknowledgements of the last
// `window_ms` (time the upload did not send, between partitions or before
// its first acknowledgement, does not count). Progress in bytes, or in any
// unit proportional to them.
class RateEstimator {
 public:
  explicit RateEstimator(double window_ms = 1000) : window_ms_(window_ms) {}
  // `amount` crossed in the `duration_ms` (> 0) up to `end_ms` (end times
  // non-decreasing from call to call), the link sending all along.
  void AddInterval(double end_ms, double duration_ms, double amount);
  // `amount` that other flows sharing the link (the client's query
  // tensors) sent by `end_ms`, counted with the upload's.
  void AddAlongside(double end_ms, double amount);
  // Progress per ms over the window up to the newest entry, or < 0 while
  // the intervals in it add up to less than half the window.
  double Estimate() const;
  double window_ms() const { return window_ms_; }

 private:
  struct Entry {
    double end_ms, duration_ms, amount;
  };
  double window_ms_;
  std::deque<Entry> entries_;  // oldest first
  double duration_sum_ = 0, amount_sum_ = 0;
};

struct ReplanOptions {
  ReplanMode mode = ReplanMode::kPassive;
  // The planner is the plan's own (its algorithm and granularity), with
  // these penalties for "original".
  std::vector<double> penalties = PlannerOptions{}.penalties;
  double band = 0.25;      // re-plan when the estimate leaves [1 - band, 1 + band] x the rate planned for
  double window_ms = 1000; // RateEstimator's
  double ack_bytes = 1 << 20;  // progress between acknowledgements: the client's upload chunk
  double rtt_ms = 0;       // the round trip the cost graph's transfers include (rtt/2 each)
};

// Why a plan cannot be re-planned, or empty when it can: re-planning
// needs the plan's planner (a PlannerNames() algorithm, not a plan made
// elsewhere) and an exact upload (exact, lossless: lossy-for-good
// encodings would need each query's exactness per re-plan, progressive
// a held mask per phase).
std::string WhyNoReplan(UploadEncoding encoding, const std::string& algorithm);

// Whether an estimate (a multiple of the rate the current plan assumed)
// leaves the band: then the client re-plans.
inline bool LeavesBand(double estimate_factor, double band) {
  return estimate_factor > 0 && (estimate_factor < 1 - band || estimate_factor > 1 + band);
}

// A re-plan: `parts` (layer positions per partition, in upload order) of
// which the first `kept` are uploaded or on their way, planned again on
// `graph` with the uplink's rate times `up_factor` and the downlink's
// times `down_factor` (CostGraph::WithLinkRates with `rtt_ms`): the kept
// ones, then the planner's partitions of the rest planned on top of them
// (MakePlanWithHeld: the kept layers free), and per count of arrived
// partitions (0..parts) where queries then run their layers, chosen at
// those rates.
struct ReplannedUpload {
  std::vector<std::vector<int>> parts;
  std::vector<LayerMask> on_server_after;
};
Result<ReplannedUpload> ReplanUpload(const CostGraph& graph, const std::vector<std::vector<int>>& parts, int kept,
                                     double up_factor, double down_factor, double rtt_ms,
                                     const PlannerOptions& planner);

}  // namespace ionn
