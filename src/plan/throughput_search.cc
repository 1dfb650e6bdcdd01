// ionn's own planner: recursive-efficiency's partitions, reordered by local
// search to maximise the queries a client serves while the model uploads.
// The objective replays the paper's protocol on the planner's own numbers
// (no link contention): queries back to back from the first arrival, each
// with the latency of the set uploaded when it starts, counted up to the
// last arrival, the one in flight by its done share -- the simulator's own
// loop (ReplayProtocol) with one step per query. A swap of two adjacent
// partitions changes one prefix set (one latency update) and two arrival
// times; passes repeat until no swap raises the count.
#include <algorithm>

#include "ionn/plan.h"
#include "ionn/protocol.h"

namespace ionn {

double ExpectedQueriesDuringUpload(const std::vector<double>& latency_ms, const std::vector<double>& upload_ms) {
  if (latency_ms.empty()) return 0;
  // Queries that take no time have no meaningful count: the replay refuses
  // them and the count is 0.
  ProtocolOptions options;
  options.queries_after_upload = 0;
  options.keep_queries = false;
  thread_local ProtocolRun run;  // the search calls this once per tried swap
  return ReplayProtocolWithoutSharing(upload_ms, latency_ms, options, &run).ok() ? run.queries_during_upload_fractional
                                                                                : 0;
}

double PlanThroughput(const CostGraph& graph, const UploadPlan& plan) {
  std::vector<double> latency, upload;
  for (const auto& p : plan.partitions) latency.push_back(p.latency_ms), upload.push_back(p.upload_ms);
  (void)graph;
  return ExpectedQueriesDuringUpload(latency, upload);
}

UnitPartitions PlanThroughputSearch(const LatencyModel& model, UnitPartitions parts) {
  const CostGraph& g = model.graph();
  const int n = g.num_layers();
  const size_t count = parts.size();
  if (count < 2) return parts;
  // MakePlan appends the units outside every partition as a last one; it is
  // part of the count but never moves.
  std::vector<double> upload(count), latency(count);
  RunLatency runs(model);
  LayerMask uploaded(n, 0);
  for (size_t k = 0; k < count; ++k) {
    upload[k] = g.UploadMs(parts[k]);
    for (int u : parts[k]) uploaded[u] = 1;
    runs.Update(uploaded);
    latency[k] = runs.base_ms();
  }
  std::vector<int> tail;
  for (int u = 0; u < n; ++u) {
    if (!uploaded[u]) tail.push_back(u);
  }
  if (!tail.empty()) {
    upload.push_back(g.UploadMs(tail));
    latency.push_back(model.OptimalMs());
  }
  double best = ExpectedQueriesDuringUpload(latency, upload);
  constexpr double kMinGain = 1e-9;
  for (bool improved = true; improved;) {
    improved = false;
    std::fill(uploaded.begin(), uploaded.end(), 0);  // the set before partition k
    for (size_t k = 0; k + 1 < count; ++k) {
      for (int u : parts[k + 1]) uploaded[u] = 1;
      runs.Update(uploaded);
      const double swapped_latency = runs.base_ms();
      for (int u : parts[k + 1]) uploaded[u] = 0;
      std::swap(upload[k], upload[k + 1]);
      const double kept_latency = latency[k];
      latency[k] = swapped_latency;
      const double tried = ExpectedQueriesDuringUpload(latency, upload);
      if (tried > best + kMinGain * std::max(1.0, best)) {
        std::swap(parts[k], parts[k + 1]);
        best = tried;
        improved = true;
      } else {
        std::swap(upload[k], upload[k + 1]);
        latency[k] = kept_latency;
      }
      for (int u : parts[k]) uploaded[u] = 1;
    }
  }
  return parts;
}

}  // namespace ionn
