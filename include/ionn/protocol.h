// The paper's experiment protocol (section 4.1) replayed on numbers: the
// partitions upload back to back; queries are raised back to back from the
// moment the first partition has arrived, each with the partitions that had
// arrived when it started. The one loop behind the simulator (full query
// steps, link sharing) and the planner's own count of queries during upload
// (one step per query, no sharing). Pure code: no I/O, no clocks.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "ionn/link_trace.h"
#include "ionn/schedule.h"
#include "ionn/status.h"

namespace ionn {

// How a query's client-to-server tensors share the uplink with the upload.
enum class LinkSharing {
  kNone,      // independent, as the planner assumes
  kFair,      // each gets half the rate while both send (two TCP flows)
  kPriority,  // query tensors first; the upload pauses meanwhile
};
const char* LinkSharingName(LinkSharing s);
Result<LinkSharing> ParseLinkSharing(const std::string& name);

// When queries arrive (DESIGN.md, "Arrivals"). Back to back is the paper's
// protocol: from the first partition's arrival on a query is always
// waiting. Otherwise queries arrive from the upload's start (time 0):
// periodically, by a seeded Poisson process, or at a trace's times; one
// runs at a time, the others wait in FIFO order, at most `max_queue` of
// them (past it the oldest waiting one is dropped, and counted); a query
// served before any partition has arrived runs locally. Latency counts
// from arrival, the wait included.
struct Arrivals {
  enum class Kind { kBackToBack, kPeriodic, kPoisson, kTrace };
  Kind kind = Kind::kBackToBack;
  double per_s = 0;              // periodic: frames per second; Poisson: mean arrivals per second
  uint64_t seed = 1;             // Poisson
  std::vector<double> times_ms;  // trace: arrival times, non-decreasing
  int max_queue = -1;            // waiting queries kept; < 0: no limit
};
// "back-to-back", "periodic:FPS" or "poisson:RATE[:SEED]" (a trace's
// times come from ParseArrivalTrace; its spec is "trace:FILE").
Result<Arrivals> ParseArrivals(const std::string& spec);
// One arrival time in ms per line: finite, >= 0, non-decreasing; blank
// lines and lines starting with '#' are skipped. Errors name the line.
Result<std::vector<double>> ParseArrivalTrace(const std::string& text);
// "back-to-back", "periodic:FPS", "poisson:RATE:SEED" or "trace".
std::string ArrivalsName(const Arrivals& arrivals);
// Sets how many queries may wait (< 0: no limit); refused for back-to-back
// arrivals, where none waits.
Status SetMaxQueue(Arrivals* arrivals, int max_queue);

// The queries waiting for their turn, for arrivals other than back to back.
class ArrivalQueue {
 public:
  explicit ArrivalQueue(Arrivals arrivals);
  // Admits every query that arrived by `now_ms` (dropping the oldest
  // waiting past max_queue), no query having run since `free_since_ms`
  // (one of those arriving after it starts at once, not counted as
  // waiting); takes the oldest waiting one and returns its arrival time,
  // or a negative value when none waits.
  double Take(double now_ms, double free_since_ms);
  // The next arrival not yet admitted (infinity: none).
  double NextArrivalMs() const { return next_ms_; }
  bool Exhausted() const { return head_ == waiting_.size() && next_ms_ == std::numeric_limits<double>::infinity(); }
  size_t waiting() const { return waiting_.size() - head_; }
  int dropped() const { return dropped_; }

 private:
  void Advance();
  Arrivals arrivals_;
  std::vector<double> waiting_;  // arrival times, oldest first from `head_`
  size_t head_ = 0;
  double next_ms_ = 0;
  int64_t index_ = 0;    // of the next arrival
  uint64_t state_ = 0;   // Poisson: splitmix64
  int dropped_ = 0;
};

// What the protocol runs on from a point on: the upload times of every
// partition (arrived ones included) and, per count of arrived partitions,
// a query's steps (as ReplayProtocol's arguments).
struct ProtocolSchedule {
  std::vector<double> upload_ms;
  std::vector<std::vector<QueryStep>> steps_after;
};

// Watches the upload as the client sees it, acknowledged bytes as they
// come, and may change what is not uploaded yet (passive re-planning,
// DESIGN.md "Re-planning from the upload"). Progress is in ms of upload
// at the rate the upload times were computed at (a multiple of bytes).
class UploadObserver {
 public:
  virtual ~UploadObserver() = default;
  // How much upload (in those ms) one acknowledgement stands for: the
  // observer is told every time this much more has been sent, and at each
  // partition's arrival. > 0.
  virtual double ack_ms() const = 0;
  // `upload_sent_ms`: the upload's progress so far; `query_sent_ms`: the
  // query tensors' progress on the uplink so far (they share it as
  // ProtocolOptions::sharing says); `arrived`: partitions arrived;
  // `in_flight`: partition `arrived` is on its way (false when one has
  // just arrived and the next has not started).
  // Returns the schedule to go on with, or null to keep the current one.
  // A new schedule keeps the arrived partitions and the one in flight
  // (entries 0..arrived-1 of upload_ms, and entry `arrived` as it is when
  // in flight) and may change every later one, and the steps of the queries
  // that start from now on (steps_after[arrived] and later); it stays
  // owned by the observer, unchanged until the next call.
  virtual const ProtocolSchedule* OnProgress(double now_ms, double upload_sent_ms, double query_sent_ms,
                                             int arrived, bool in_flight) = 0;
};

struct ProtocolOptions {
  LinkSharing sharing = LinkSharing::kNone;
  // Null: the plan as given. Else the event loop tells it of the upload's
  // progress and follows the schedules it returns.
  UploadObserver* observer = nullptr;
  // A link whose rate changes (link_trace.h): each direction's rate over
  // time as a multiple of the rate the upload and transfer times were
  // computed at (RateTrace::Relative); null: constant. The upload and the
  // uplink steps progress at the uplink's multiple (shared as `sharing`
  // says), downlink steps (QueryStep::downlink) at the downlink's.
  std::shared_ptr<const RateTrace> uplink_factor, downlink_factor;
  Arrivals arrivals;
  int queries_after_upload = 5;  // raised once the whole model is uploaded
  int min_queries = 0;           // keep raising queries until this many finished
  double raise_until_ms = -1;    // and until this time (a window past the upload's end)
  int max_queries = 10000000;    // guard against degenerate zero-latency graphs
  bool keep_queries = true;      // false: counts only, ProtocolRun::queries stays empty
};

struct ProtocolQuery {
  double start_ms = 0, end_ms = 0;
  int partitions_uploaded = 0;  // when it started
  double arrival_ms = -1;       // when it arrived; < 0: when it started (back to back)
  double arrived_ms() const { return arrival_ms < 0 ? start_ms : arrival_ms; }
  double latency_ms() const { return end_ms - arrived_ms(); }
};

struct ProtocolRun {
  std::vector<ProtocolQuery> queries;
  std::vector<double> partition_done_ms;  // arrival time of each partition
  double upload_ms = 0;                   // arrival of the last partition
  int queries_during_upload = 0;          // finished no later than upload_ms
  // + the done share of the query in flight when the upload ended.
  double queries_during_upload_fractional = 0;
  int queries_dropped = 0;                // arrived, and dropped from a full queue
};

// Which queries count, one rule for the simulator, the client and the live
// experiment. A query is "during upload" when it finished no later than the
// last partition's arrival (`upload_ms`) of an upload that completed, and
// "in the window" when it finished no later than `window_ms`. Latency
// quantiles are by nearest rank (the smallest latency that at least q of
// the queries do not exceed), latency counting from arrival (the wait
// included); throughput is queries over the time from the first start to
// the last end; with a deadline, the share of queries whose latency met it.
inline bool FinishedDuringUpload(double end_ms, double upload_ms, bool upload_complete) {
  return upload_complete && end_ms <= upload_ms;
}
struct QueryCounts {
  int queries = 0;
  int during_upload = 0;
  int in_window = 0;
  double first_query_end_ms = 0;
  int partitions_first_half = 0, partitions_second_half = 0;  // arrived by upload_ms / 2, after (0, 0: incomplete)
  double latency_mean_ms = 0, latency_p50_ms = 0, latency_p90_ms = 0, latency_p95_ms = 0, latency_p99_ms = 0;
  double throughput_qps = 0;
  double wait_mean_ms = 0;        // from arrival to start
  double deadline_met_share = 0;  // of the queries, with a deadline (0 without queries)
};
QueryCounts CountQueries(const std::vector<ProtocolQuery>& queries, const std::vector<double>& partition_done_ms,
                         double upload_ms, bool upload_complete, double window_ms, double deadline_ms = -1);
// The q-quantile (0 < q <= 1) of `values` by nearest rank; 0 when empty.
double NearestRank(std::vector<double> values, double q);

// `upload_ms[p]`: partition p's upload time at full uplink rate (>= 1
// partition). `steps_after[p]` (p = 0..partitions): the steps of a query
// that starts with partitions 0..p-1 arrived ([0], all local, is read only
// for arrivals other than back to back). Errors when a
// query takes no time or more than max_queries are raised.
Result<ProtocolRun> ReplayProtocol(const std::vector<double>& upload_ms,
                                   const std::vector<std::vector<QueryStep>>& steps_after,
                                   const ProtocolOptions& options);
// The same into `run`, reusing its buffers (for callers that replay often).
Status ReplayProtocol(const std::vector<double>& upload_ms, const std::vector<std::vector<QueryStep>>& steps_after,
                      const ProtocolOptions& options, ProtocolRun* run);

// The protocol without link sharing, where a query lasts the same whatever
// the upload does: `latency_ms[p]` is the latency of a query that starts
// with partitions 0..p arrived (one value per partition, all > 0).
// ReplayProtocol with LinkSharing::kNone and back-to-back arrivals is this
// on the sums of the steps.
Status ReplayProtocolWithoutSharing(const std::vector<double>& upload_ms, const std::vector<double>& latency_ms,
                                    const ProtocolOptions& options, ProtocolRun* run);
// The event loop behind ReplayProtocol for every other case (link sharing,
// arrivals); public so tests can hold it to the one above.
Status ReplayProtocolEvents(const std::vector<double>& upload_ms, const std::vector<std::vector<QueryStep>>& steps_after,
                            const ProtocolOptions& options, ProtocolRun* run);

}  // namespace ionn
