// The paper's experiment protocol (section 4.1) replayed on numbers: the
// partitions upload back to back; queries are raised back to back from the
// moment the first partition has arrived, each with the partitions that had
// arrived when it started. The one loop behind the simulator (full query
// steps, link sharing) and the planner's own count of queries during upload
// (one step per query, no sharing). Pure code: no I/O, no clocks.
#pragma once

#include <string>
#include <vector>

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

struct ProtocolOptions {
  LinkSharing sharing = LinkSharing::kNone;
  int queries_after_upload = 5;  // raised once the whole model is uploaded
  int min_queries = 0;           // keep raising queries until this many finished
  int max_queries = 10000000;    // guard against degenerate zero-latency graphs
  bool keep_queries = true;      // false: counts only, ProtocolRun::queries stays empty
};

struct ProtocolQuery {
  double start_ms = 0, end_ms = 0;
  int partitions_uploaded = 0;  // when it started
};

struct ProtocolRun {
  std::vector<ProtocolQuery> queries;
  std::vector<double> partition_done_ms;  // arrival time of each partition
  double upload_ms = 0;                   // arrival of the last partition
  int queries_during_upload = 0;          // finished no later than upload_ms
  // + the done share of the query in flight when the upload ended.
  double queries_during_upload_fractional = 0;
};

// Which queries count, one rule for the simulator, the client and the live
// experiment. A query is "during upload" when it finished no later than the
// last partition's arrival (`upload_ms`) of an upload that completed, and
// "in the window" when it finished no later than `window_ms`. Latency
// quantiles are by nearest rank (the smallest latency that at least q of
// the queries do not exceed); throughput is queries over the time from the
// first start to the last end.
inline bool FinishedDuringUpload(double end_ms, double upload_ms, bool upload_complete) {
  return upload_complete && end_ms <= upload_ms;
}
struct QueryCounts {
  int queries = 0;
  int during_upload = 0;
  int in_window = 0;
  double first_query_end_ms = 0;
  int partitions_first_half = 0, partitions_second_half = 0;  // arrived by upload_ms / 2, after (0, 0: incomplete)
  double latency_mean_ms = 0, latency_p50_ms = 0, latency_p90_ms = 0, latency_p99_ms = 0;
  double throughput_qps = 0;
};
QueryCounts CountQueries(const std::vector<ProtocolQuery>& queries, const std::vector<double>& partition_done_ms,
                         double upload_ms, bool upload_complete, double window_ms);
// The q-quantile (0 < q <= 1) of `values` by nearest rank; 0 when empty.
double NearestRank(std::vector<double> values, double q);

// `upload_ms[p]`: partition p's upload time at full uplink rate (>= 1
// partition). `steps_after[p]` (p = 1..partitions; [0] unused): the steps
// of a query that starts with partitions 0..p-1 arrived. Errors when a
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
// ReplayProtocol with LinkSharing::kNone is this on the sums of the steps.
Status ReplayProtocolWithoutSharing(const std::vector<double>& upload_ms, const std::vector<double>& latency_ms,
                                    const ProtocolOptions& options, ProtocolRun* run);

}  // namespace ionn
