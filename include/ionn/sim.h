// Discrete-event replay of the paper's experiment (section 4.1) on a cost
// graph and an upload plan: partitions upload one after another, queries
// run back to back from the moment the first partition has arrived (or
// arrive as SimOptions::arrivals says, protocol.h), each
// with the layers uploaded when it started, placed by the exact planner
// semantics and executed as the query's schedule (include/ionn/schedule.h)
// says; the protocol loop is ReplayProtocol (include/ionn/protocol.h).
// Deterministic; no wall clock.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "ionn/cost_graph.h"
#include "ionn/plan.h"
#include "ionn/protocol.h"
#include "ionn/replan.h"

namespace ionn {

struct SimOptions {
  LinkSharing sharing = LinkSharing::kNone;
  Arrivals arrivals;             // back to back (the paper) by default
  double deadline_ms = -1;       // >= 0: count the queries whose latency met it
  int queries_after_upload = 5;  // raised once the whole model is uploaded
  int min_queries = 0;           // keep raising queries until this many finished
  double window_ms = -1;         // for queries_in_window; < 0: the all-at-once upload time
  int max_queries = 10000000;    // guard against degenerate zero-latency graphs
  // A link whose rate changes (link_trace.h): each direction's rate over
  // time (null: constant), replayed for the upload and every query tensor;
  // the cost graph's times are at `uplink_bytes_per_ms` and
  // `downlink_bytes_per_ms` (> 0 with a trace). The window (unless given)
  // is then the fp32 all-at-once upload's time on the uplink's trace.
  std::shared_ptr<const RateTrace> uplink_trace, downlink_trace;
  double uplink_bytes_per_ms = 0, downlink_bytes_per_ms = 0;
  // On a trace, the client re-plans as replan.h says (off by default
  // here; `ionn simulate` makes passive its default); on a constant link
  // there is nothing to re-plan for (the estimate is the rate planned
  // for) and the plan runs as given.
  ReplanOptions replan{ReplanMode::kOff};
};

// One re-plan during a simulated upload.
struct SimReplan {
  double at_ms = 0;
  double estimated_mbps = 0;  // the uplink rate re-planned for
  double true_mbps = 0;       // the trace's mean over the last 100 ms
  int partitions_arrived = 0;
  int partitions_left = 0;    // planned after it (the one in flight included)
};
// The uplink estimate as the client saw it at an acknowledgement.
struct SimRateSample {
  double at_ms = 0;
  double estimated_mbps = -1;  // < 0: not enough acknowledgements yet
  double true_mbps = 0;        // the trace's mean over the last 100 ms
};

struct SimQuery {
  double arrival_ms = 0;        // = start_ms back to back; latency counts from it
  double start_ms = 0, end_ms = 0, latency_ms = 0;
  int partitions_uploaded = 0;  // when it started
  bool during_upload = false;   // finished no later than the upload
  bool exact = true;            // every layer it ran on the server held exact weights
};

// "Near-optimal" (DESIGN.md, "The window"): a latency of at most 1.1x the
// fp32 optimal latency.
constexpr double kNearOptimalFactor = 1.1;
inline bool NearOptimal(double latency_ms, double optimal_ms) {
  return latency_ms <= kNearOptimalFactor * optimal_ms + 1e-9;
}

struct SimResult {
  std::vector<SimQuery> queries;
  std::vector<double> partition_done_ms;  // arrival time of each partition
  double upload_ms = 0;                   // arrival of the last partition
  int queries_during_upload = 0;
  // + the share of the query in flight when the upload ended that was done.
  double queries_during_upload_fractional = 0;
  double first_query_end_ms = 0;
  double window_ms = 0;
  int queries_in_window = 0;
  int partitions = 0, partitions_first_half = 0, partitions_second_half = 0;
  double largest_partition_share = 0;  // of all weight upload time
  QueryCounts counts;  // the counts above (CountQueries), with latency quantiles and throughput
  std::string arrivals = "back-to-back";  // ArrivalsName
  int queries_dropped = 0;                // arrived, and dropped from a full queue
  double deadline_ms = -1;                // as given (< 0: none)
  std::string upload_encoding = "exact";  // the plan's (UploadEncodingName)
  // End of the first query whose latency was near-optimal (< 0: none).
  double near_optimal_ms = -1;
  // When the server held every layer's exact weights: the upload's end,
  // or < 0 when a layer travelled lossy for good (fp16, int8).
  double exact_from_ms = -1;
  int queries_approximate = 0;  // that ran a layer without its exact weights
  // Re-planning (SimOptions::replan, on a trace): the mode, each re-plan,
  // the estimate at every acknowledgement, and the plan as it ran (its
  // partitions in the order they arrived), which the result's partition
  // counts are of; "off" and empty otherwise.
  std::string replan = "off";
  std::vector<SimReplan> replans;
  std::vector<SimRateSample> rate_samples;
  std::shared_ptr<const UploadPlan> executed_plan;  // null: the plan as given
};

Result<SimResult> Simulate(const CostGraph& graph, const UploadPlan& plan, const SimOptions& options);

// The largest partition's share of the plan's weight upload time (its
// partition overheads apart).
double LargestPartitionShare(const CostGraph& graph, const UploadPlan& plan);

// When the first query whose placement offloads (the plan's latency for
// what was uploaded when it started is below local execution) ends; 0 when
// none does. For simulated and measured runs alike.
double FirstOffloadedQueryEndMs(const UploadPlan& plan, const SimResult& result);

// The steps of one query with `on_server` on the server: the schedule's
// (ScheduleQuery, ScheduleSteps), which the runtime executes too.
std::vector<QueryStep> QuerySteps(const CostGraph& graph, const LayerMask& on_server, bool split_downlink = false);

// The query counts both reports write (simulate and client): latency
// mean and quantiles, throughput, arrivals, drops, wait and the deadline's
// share (null without a deadline: `deadline_ms` < 0).
void AddQueryCounts(const QueryCounts& counts, const std::string& arrivals, int queries_dropped, double deadline_ms,
                    nlohmann::json* doc);

// The window's fields both reports write (DESIGN.md, "The window"):
// upload_encoding, near_optimal_ms and exact_from_ms (null when < 0), and
// queries_approximate.
void AddWindowFields(UploadEncoding encoding, double near_optimal_ms, double exact_from_ms, int queries_approximate,
                     nlohmann::json* doc);

// "format": "ionn-simulate/1": the plan's vocabulary (partitions with
// their simulated arrival as uploaded_at_ms) plus the protocol's counts.
std::string SimResultToJson(const CostGraph& graph, const SimResult& result, const UploadPlan& plan,
                            const RunSetting& setting = {}, bool with_queries = true);
std::string SimResultToTable(const SimResult& result, const UploadPlan& plan);

}  // namespace ionn
