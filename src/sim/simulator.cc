#include "ionn/sim.h"

#include <algorithm>

#include "ionn/schedule.h"

namespace ionn {

std::vector<QueryStep> QuerySteps(const CostGraph& g, const LayerMask& on_server, bool split_downlink) {
  return ScheduleSteps(ScheduleQuery(g, on_server), split_downlink);
}

Result<SimResult> Simulate(const CostGraph& graph, const UploadPlan& plan, const SimOptions& options) {
  const int num_parts = static_cast<int>(plan.partitions.size());
  if (num_parts == 0) return Status::Invalid("the plan has no partitions");
  if ((options.uplink_trace && !(options.uplink_bytes_per_ms > 0)) ||
      (options.downlink_trace && !(options.downlink_bytes_per_ms > 0))) {
    return Status::Invalid("a link trace needs the rate the cost graph's times were computed at");
  }
  const bool split_downlink = options.downlink_trace != nullptr;
  const LatencyModel model(graph);
  // The steps of a query that starts with partitions 0..p-1 uploaded.
  std::vector<std::vector<QueryStep>> steps_after(num_parts + 1);
  std::vector<double> upload_ms(num_parts);
  LayerMask uploaded(graph.num_layers(), 0);
  SimResult r;
  for (int p = 0; p <= num_parts; ++p) {
    if (p > 0) {
      for (int k : plan.partitions[p - 1].layers) uploaded[k] = 1;
      steps_after[p] = QuerySteps(graph, model.Best(uploaded).on_server, split_downlink);
    } else if (options.arrivals.kind != Arrivals::Kind::kBackToBack) {
      steps_after[0] = QuerySteps(graph, uploaded, split_downlink);  // nothing arrived yet: all here
    }
    if (p < num_parts) {
      upload_ms[p] = plan.partitions[p].upload_ms;
    }
  }
  // Whether a query starting with partitions 0..p-1 arrived computes exactly.
  std::vector<uint8_t> exact_after(num_parts + 1, 1);
  const std::vector<LayerMask> exact_layers = ExactLayersAfter(graph, plan);
  uploaded.assign(graph.num_layers(), 0);
  for (int p = 1; p <= num_parts; ++p) {
    for (int k : plan.partitions[p - 1].layers) uploaded[k] = 1;
    const LayerMask on_server = model.Best(uploaded).on_server;
    for (int k = 0; k < graph.num_layers(); ++k) {
      if (on_server[k] && !exact_layers[p][k]) exact_after[p] = 0;
    }
  }
  r.largest_partition_share = LargestPartitionShare(graph, plan);
  ProtocolOptions po;
  if (options.uplink_trace) {
    po.uplink_factor = std::make_shared<RateTrace>(options.uplink_trace->Relative(options.uplink_bytes_per_ms));
  }
  if (options.downlink_trace) {
    po.downlink_factor = std::make_shared<RateTrace>(options.downlink_trace->Relative(options.downlink_bytes_per_ms));
  }
  // The window: the fp32 all-at-once upload, on the uplink's trace when
  // there is one (its times are in ms at the planned rate: the factor
  // trace's "bytes" are those ms).
  r.window_ms = options.window_ms >= 0 ? options.window_ms
                : po.uplink_factor    ? po.uplink_factor->FinishMs(0, AllAtOnceUploadMs(graph))
                                      : AllAtOnceUploadMs(graph);
  po.sharing = options.sharing;
  po.queries_after_upload = options.queries_after_upload;
  po.min_queries = options.min_queries;
  po.max_queries = options.max_queries;
  po.arrivals = options.arrivals;
  // queries_in_window counts queries up to the window's end, which an
  // upload of fewer bytes than fp32's ends before; exact uploads keep the
  // paper's protocol (the upload, then 5 queries), as the client does.
  double upload_total = 0;
  for (double ms : upload_ms) upload_total += ms;
  // (on the trace when there is one: both times then as they pass)
  if (po.uplink_factor) upload_total = po.uplink_factor->FinishMs(0, upload_total);
  if (plan.encoding != UploadEncoding::kExact && r.window_ms > upload_total * (1 + 1e-9)) {
    po.raise_until_ms = r.window_ms;
  }
  auto run = ReplayProtocol(upload_ms, steps_after, po);
  if (!run.ok()) return run.status();

  const QueryCounts counts = CountQueries(run->queries, run->partition_done_ms, run->upload_ms,
                                         /*upload_complete=*/true, r.window_ms, options.deadline_ms);
  r.arrivals = ArrivalsName(options.arrivals);
  r.queries_dropped = run->queries_dropped;
  r.deadline_ms = options.deadline_ms;
  r.partition_done_ms = std::move(run->partition_done_ms);
  r.upload_ms = run->upload_ms;
  r.queries_during_upload = counts.during_upload;
  r.queries_during_upload_fractional = run->queries_during_upload_fractional;
  r.partitions = num_parts;
  r.partitions_first_half = counts.partitions_first_half;
  r.partitions_second_half = counts.partitions_second_half;
  r.queries_in_window = counts.in_window;
  r.first_query_end_ms = counts.first_query_end_ms;
  r.counts = counts;
  r.upload_encoding = UploadEncodingName(plan.encoding);
  r.exact_from_ms = ExactInTheEnd(graph, plan) ? r.upload_ms : -1;
  for (const auto& q : run->queries) {
    r.queries.push_back({q.arrived_ms(), q.start_ms, q.end_ms, q.latency_ms(), q.partitions_uploaded,
                         FinishedDuringUpload(q.end_ms, r.upload_ms, /*upload_complete=*/true),
                         exact_after[q.partitions_uploaded] != 0});
    if (r.near_optimal_ms < 0 && NearOptimal(q.latency_ms(), plan.latency_optimal_ms)) r.near_optimal_ms = q.end_ms;
    r.queries_approximate += r.queries.back().exact ? 0 : 1;
  }
  return r;
}

double LargestPartitionShare(const CostGraph& graph, const UploadPlan& plan) {
  double largest = 0, weights_ms = 0;
  for (const Partition& p : plan.partitions) {
    const double w = p.upload_ms - graph.partition_overhead_ms();
    weights_ms += w;
    largest = std::max(largest, w);
  }
  return weights_ms > 0 ? largest / weights_ms : 0;
}

double FirstOffloadedQueryEndMs(const UploadPlan& plan, const SimResult& result) {
  for (const auto& q : result.queries) {
    const int p = q.partitions_uploaded;
    if (p > 0 && p <= static_cast<int>(plan.partitions.size()) &&
        plan.partitions[p - 1].latency_ms < plan.latency_local_ms - 1e-9) {
      return q.end_ms;
    }
  }
  return 0;
}

}  // namespace ionn
