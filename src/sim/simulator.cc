#include "ionn/sim.h"

#include <algorithm>
#include <cmath>

#include "ionn/model_costs.h"
#include "ionn/schedule.h"

namespace ionn {

std::vector<QueryStep> QuerySteps(const CostGraph& g, const LayerMask& on_server, bool split_downlink) {
  return ScheduleSteps(ScheduleQuery(g, on_server), split_downlink);
}

namespace {

constexpr double kTrueRateWindowMs = 100;

// The client's re-planning (replan.h) inside the protocol loop: it sees
// the upload's acknowledgements, estimates the uplink's rate (or, as the
// oracle, reads the trace's next 100 ms), and when that leaves the band
// around the rate its plan assumed, plans the partitions not started yet
// again on the graph at that rate and places the next queries for it.
// Times stay at the planned rate (the loop scales them by the trace).
class SimReplanner : public UploadObserver {
 public:
  SimReplanner(const CostGraph& graph, const UploadPlan& plan, const SimOptions& options, const RateTrace& up_factor,
               const RateTrace* down_factor, bool split_downlink, ProtocolSchedule schedule)
      : graph_(graph),
        options_(options),
        up_factor_(up_factor),
        down_factor_(down_factor),
        split_downlink_(split_downlink),
        schedule_(std::move(schedule)),
        estimator_(options.replan.window_ms),
        ack_ms_(options.replan.ack_bytes / options.uplink_bytes_per_ms) {
    planner_.algorithm = plan.algorithm;
    planner_.granularity = plan.granularity;
    planner_.penalties = options.replan.penalties;
    for (const Partition& p : plan.partitions) parts_.push_back(p.layers);
  }

  double ack_ms() const override { return ack_ms_; }
  const Status& status() const { return status_; }
  const std::vector<std::vector<int>>& parts() const { return parts_; }
  std::vector<SimReplan>& replans() { return replans_; }
  std::vector<SimRateSample>& samples() { return samples_; }

  const ProtocolSchedule* OnProgress(double now_ms, double upload_sent_ms, double query_sent_ms, int arrived,
                                     bool in_flight) override {
    if (!status_.ok()) return nullptr;
    // What the client counts: the upload's acknowledged bytes since the
    // last acknowledgement, and its query tensors' where they share the
    // uplink with it (without sharing they take none of the upload's rate).
    const double shared = options_.sharing == LinkSharing::kNone ? 0 : query_sent_ms;
    if (now_ms > last_ack_ms_) {
      estimator_.AddInterval(now_ms, now_ms - last_ack_ms_, upload_sent_ms + shared - last_sent_);
    }
    last_ack_ms_ = now_ms;
    last_sent_ = upload_sent_ms + shared;
    // The oracle: the true rate of the next 100 ms (a mahimahi trace's
    // rate changes every ms), no estimate's lag.
    const double factor = options_.replan.mode == ReplanMode::kOracle
                              ? up_factor_.BytesBetween(now_ms, now_ms + kTrueRateWindowMs) / kTrueRateWindowMs
                              : estimator_.Estimate();
    const double to_mbps = options_.uplink_bytes_per_ms / kBytesPerMsPerMbps;
    const double from = std::max(0.0, now_ms - kTrueRateWindowMs);
    const double true_factor =
        now_ms > from ? up_factor_.BytesBetween(from, now_ms) / (now_ms - from) : up_factor_.RateAt(now_ms);
    // (the oracle's 0 is an outage ahead, not "no estimate"; neither mode
    // re-plans for an outage: LeavesBand needs a rate)
    samples_.push_back({now_ms, factor >= 0 ? factor * to_mbps : -1, true_factor * to_mbps});
    if (!LeavesBand(factor / planned_factor_, options_.replan.band)) return nullptr;
    // The arrived partitions and the one in flight stay; what follows is
    // planned again (with nothing left, the placement alone changes).
    const int kept = arrived + (in_flight ? 1 : 0);
    status_ = Replan(now_ms, factor, arrived, kept);
    if (!status_.ok()) return nullptr;
    replans_.push_back({now_ms, factor * to_mbps, true_factor * to_mbps, arrived,
                        static_cast<int>(parts_.size()) - arrived});
    planned_factor_ = factor;
    return &schedule_;
  }

 private:
  // Plans the partitions past the first `kept` again for `factor` x the
  // planned uplink rate, and the steps of queries starting from `arrived` on.
  Status Replan(double now_ms, double factor, int arrived, int kept) {
    // The downlink: the oracle knows it; the passive client keeps the rate
    // planned for (query replies would tell it: not yet estimated).
    double down = 1;
    if (options_.replan.mode == ReplanMode::kOracle && down_factor_) {
      down = std::max(down_factor_->BytesBetween(now_ms, now_ms + kTrueRateWindowMs) / kTrueRateWindowMs, 1e-6);
    }
    IONN_ASSIGN_OR_RETURN(ReplannedUpload next,
                          ReplanUpload(graph_, parts_, kept, factor, down, options_.replan.rtt_ms, planner_));
    parts_ = std::move(next.parts);
    const int n = static_cast<int>(parts_.size());
    schedule_.upload_ms.resize(n);
    for (int p = kept; p < n; ++p) schedule_.upload_ms[p] = graph_.UploadMs(parts_[p]);
    // Queries starting from now on: placed at the new rates, their steps
    // at the planned one (the loop scales them by the trace).
    schedule_.steps_after.resize(n + 1);
    for (int p = std::max(arrived, 1); p <= n; ++p) {
      schedule_.steps_after[p] = QuerySteps(graph_, next.on_server_after[p], split_downlink_);
    }
    return Status::Ok();
  }

  const CostGraph& graph_;
  const SimOptions& options_;
  const RateTrace& up_factor_;
  const RateTrace* down_factor_;
  const bool split_downlink_;
  PlannerOptions planner_;
  ProtocolSchedule schedule_;
  std::vector<std::vector<int>> parts_;  // layers per partition: arrived, in flight, planned
  RateEstimator estimator_;
  double ack_ms_;
  double planned_factor_ = 1;  // the rate the current plan assumed, as a multiple of the first
  double last_ack_ms_ = 0, last_sent_ = 0;  // at the last acknowledgement
  Status status_ = Status::Ok();
  std::vector<SimReplan> replans_;
  std::vector<SimRateSample> samples_;
};

}  // namespace

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
  // Re-planning: on an uplink trace (on a constant link the estimate is
  // the rate planned for, and nothing changes).
  std::unique_ptr<SimReplanner> replanner;
  if (po.uplink_factor && options.replan.mode != ReplanMode::kOff) {
    const std::string why_not = WhyNoReplan(plan.encoding, plan.algorithm);
    if (!why_not.empty()) return Status::Invalid(why_not);
    const ReplanOptions& ro = options.replan;
    if (!(ro.ack_bytes >= 1024) || !(ro.window_ms > 0) || !(ro.band > 0) || !std::isfinite(ro.ack_bytes + ro.window_ms + ro.band)) {
      return Status::Invalid("re-planning: acknowledgements of at least 1024 bytes (" + std::to_string(ro.ack_bytes) +
                             "), a window > 0 ms (" + std::to_string(ro.window_ms) + ") and a band > 0 (" +
                             std::to_string(ro.band) + ") needed");
    }
    replanner = std::make_unique<SimReplanner>(graph, plan, options, *po.uplink_factor, po.downlink_factor.get(),
                                               split_downlink, ProtocolSchedule{upload_ms, steps_after});
    po.observer = replanner.get();
    r.replan = ReplanModeName(options.replan.mode);
  }
  auto run = ReplayProtocol(upload_ms, steps_after, po);
  if (!run.ok()) return run.status();
  if (replanner) {
    IONN_RETURN_IF_ERROR(replanner->status());
    r.replans = std::move(replanner->replans());
    r.rate_samples = std::move(replanner->samples());
    if (!r.replans.empty()) {  // the plan as it ran
      const int free = plan.partitions[0].upload_ms == 0 && graph.UploadMs(plan.partitions[0].layers) > 0 ? 1 : 0;
      IONN_ASSIGN_OR_RETURN(UploadPlan ran, EvaluatePartitions(graph, plan.algorithm, plan.granularity,
                                                               replanner->parts(), free));
      ran.encoding = plan.encoding;
      r.executed_plan = std::make_shared<const UploadPlan>(std::move(ran));
      r.largest_partition_share = LargestPartitionShare(graph, *r.executed_plan);
      exact_after.assign(r.executed_plan->partitions.size() + 1, 1);  // exact uploads only
    }
  }

  const QueryCounts counts = CountQueries(run->queries, run->partition_done_ms, run->upload_ms,
                                         /*upload_complete=*/true, r.window_ms, options.deadline_ms);
  r.arrivals = ArrivalsName(options.arrivals);
  r.queries_dropped = run->queries_dropped;
  r.deadline_ms = options.deadline_ms;
  r.partition_done_ms = std::move(run->partition_done_ms);
  r.upload_ms = run->upload_ms;
  r.queries_during_upload = counts.during_upload;
  r.queries_during_upload_fractional = run->queries_during_upload_fractional;
  r.partitions = static_cast<int>(r.partition_done_ms.size());
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
