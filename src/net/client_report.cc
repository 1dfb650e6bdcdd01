// The client's report: ionn-client/2 JSON, the trace CSV, latency
// divergence and output checks (client_report.h).
#include "ionn/client_report.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "ionn/format.h"
#include "ionn/protocol.h"
#include "ionn/sim.h"

namespace ionn {

std::optional<LatencyDivergence> FirstDivergence(const std::vector<ClientQuery>& queries) {
  constexpr size_t kRun = 3;
  size_t start = 0, length = 0;
  for (size_t i = 0; i <= queries.size(); ++i) {
    bool off = false;
    if (i < queries.size()) {
      const ClientQuery& q = queries[i];
      const double measured = q.end_ms - q.start_ms;
      off = !q.fell_back && q.predicted_ms > 0 && std::fabs(measured - q.predicted_ms) > 0.25 * q.predicted_ms;
    }
    if (off) {
      if (length++ == 0) start = i;
      continue;
    }
    if (length >= kRun) {
      LatencyDivergence d{start, start + length - 1};
      std::vector<double> measured, predicted;
      for (size_t k = start; k < start + length; ++k) {
        measured.push_back(queries[k].end_ms - queries[k].start_ms);
        predicted.push_back(queries[k].predicted_ms);
        d.on_server = d.on_server || queries[k].server_layers > 0;
      }
      d.measured_ms = NearestRank(measured, 0.5);
      d.predicted_ms = NearestRank(predicted, 0.5);
      return d;
    }
    length = 0;
  }
  return std::nullopt;
}

double RelativeError(const TensorMap& got, const TensorMap& want) {
  // Each output against its own largest value, so that a small head is not
  // hidden by a large one; that value floored at 1e-3 of the largest of
  // all, so that an output of (near) zeros is not held to nothing.
  double all_scale = 0;
  for (const auto& [name, w] : want) {
    for (float v : w.data) all_scale = std::max(all_scale, std::fabs(double(v)));
  }
  double worst = 0;
  for (const auto& [name, w] : want) {
    auto it = got.find(name);
    if (it == got.end() || it->second.shape != w.shape) return HUGE_VAL;
    double diff = 0, scale = 1e-3 * all_scale;
    for (size_t i = 0; i < w.data.size(); ++i) {
      const double d = std::fabs(double(it->second.data[i]) - double(w.data[i]));
      if (!(d <= diff)) diff = d;  // NaN too
      scale = std::max(scale, std::fabs(double(w.data[i])));
    }
    if (std::isnan(diff)) return HUGE_VAL;
    worst = std::max(worst, diff / std::max(scale, 1e-30));
  }
  return worst;
}

nlohmann::json ClientResultToJson(const Graph& model, const ClientResult& r, const ClientReportSetting& setting) {
  nlohmann::json j = {{"format", "ionn-client/2"}};
  AddRunSetting(setting.run, &j);  // as the planner assumed it; the real link is whatever carried the run
  std::vector<double> acked;  // of the last session, whose plan this is
  nlohmann::json all_acked = nlohmann::json::array();
  for (const auto& p : r.partitions) {
    if (p.session + 1 == static_cast<int>(r.sessions.size())) acked.push_back(p.acked_ms);
    all_acked.push_back({{"session", p.session}, {"layer_count", p.layers}, {"bytes", p.bytes}, {"held", p.held},
                         {"start_ms", p.start_ms}, {"acked_ms", p.acked_ms}});
  }
  j["server"] = r.server;
  j["server_name"] = r.server_name;
  nlohmann::json sessions = nlohmann::json::array();
  for (const auto& s : r.sessions) {
    sessions.push_back({{"server", s.server}, {"server_name", s.server_name}, {"opened_ms", s.opened_ms},
                        {"held_layers", s.held_layers}, {"held_bytes", s.held_bytes},
                        {"partition_count", s.partitions}, {"acked_count", s.acked}, {"lost", s.lost}});
  }
  j["sessions"] = sessions;
  j["reconnect_attempts"] = r.reconnect_attempts;
  j["partition_acks"] = all_acked;  // of every session, in order
  nlohmann::json attempts = nlohmann::json::array();
  for (const auto& a : r.upload_attempts) {
    attempts.push_back({{"session", a.session}, {"partition", a.partition}, {"bytes", a.bytes},
                        {"resumed_bytes", a.resumed}, {"sent_bytes", a.sent}, {"start_ms", a.start_ms},
                        {"end_ms", a.end_ms}, {"acked", a.acked}, {"ended", a.ended}});
  }
  j["upload_attempts"] = attempts;
  j["upload_started_unix_ms"] = r.started_unix_ms;
  j["replan"] = r.replan;
  j["replan_error"] = r.replan_error.empty() ? nlohmann::json() : nlohmann::json(r.replan_error);
  nlohmann::json replans = nlohmann::json::array();
  for (const auto& e : r.replans) {
    replans.push_back({{"at_ms", e.at_ms}, {"estimated_mbps", e.estimated_mbps}, {"plan_ms", e.plan_ms},
                       {"session", e.session}, {"partitions_acked", e.partitions_acked},
                       {"partitions_left", e.partitions_left}});
  }
  j["replans"] = replans;
  nlohmann::json estimates = nlohmann::json::array();
  for (const auto& e : r.rate_samples) {
    estimates.push_back({{"at_ms", e.at_ms},
                         {"estimated_mbps", e.estimated_mbps >= 0 ? nlohmann::json(e.estimated_mbps) : nlohmann::json()}});
  }
  j["rate_estimates"] = estimates;
  int64_t weight_bytes = 0;
  for (const auto& l : model.layers) weight_bytes += LayerWeightBytes(l);
  j["weight_bytes"] = weight_bytes;  // the model's
  j["bytes_sent"] = r.bytes_sent;
  int64_t query_bytes_up = 0, query_bytes_down = 0;
  int offloaded = 0, fell_back = 0;
  for (const auto& q : r.queries) {
    query_bytes_up += q.bytes_up, query_bytes_down += q.bytes_down;
    offloaded += q.server_layers > 0, fell_back += q.fell_back;
  }
  j["query_bytes_up"] = query_bytes_up;  // tensors the queries sent, every query together
  j["query_bytes_down"] = query_bytes_down;
  j["resumed_bytes"] = r.resumed_bytes;
  j["algorithm"] = r.plan.algorithm;
  j["granularity"] = GranularityName(r.plan.granularity);
  j["emulated_profile"] = setting.emulated_profile;
  AddPartitions(r.costs, r.plan, &acked, &j);
  j["held_layers"] = r.held_layers;  // the server's, from earlier sessions: partition 0, not uploaded
  j["held_bytes"] = r.held_bytes;
  j["ignore_held"] = setting.ignore_held;
  j["upload_complete"] = r.upload_complete;
  j["upload_ms"] = r.upload_ms;
  j["query_count"] = r.queries.size();
  nlohmann::json queries = nlohmann::json::array();
  for (const auto& q : r.queries) {
    queries.push_back({{"arrival_ms", q.arrival_ms}, {"start_ms", q.start_ms}, {"end_ms", q.end_ms},
                       {"latency_ms", q.end_ms - q.arrival_ms},
                       {"predicted_ms", q.predicted_ms}, {"partitions_uploaded", q.partitions_uploaded},
                       {"layers_on_server", q.server_layers},
                       {"during_upload", FinishedDuringUpload(q.end_ms, r.upload_ms, r.upload_complete)},
                       {"fell_back", q.fell_back}, {"session", q.session}, {"exact", q.exact}});
  }
  j["queries"] = queries;
  const QueryCounts& counts = r.counts;
  AddQueryCounts(counts, setting.arrivals, r.queries_dropped, setting.deadline_ms, &j);
  j["window_ms"] = AllAtOnceUploadMs(r.costs);
  j["queries_in_window"] = counts.in_window;
  AddWindowFields(r.plan.encoding, r.near_optimal_ms, r.exact_from_ms, r.queries_approximate, &j);
  j["partitions_first_half"] = counts.partitions_first_half;  // as the simulator counts them (Figs. 5 and 6)
  j["partitions_second_half"] = counts.partitions_second_half;
  j["largest_partition_share"] = LargestPartitionShare(r.costs, r.plan);
  j["latency_diverged"] = nullptr;
  if (const auto d = FirstDivergence(r.queries)) {
    j["latency_diverged"] = {{"first_query", d->first}, {"last_query", d->last},
                             {"measured_ms_p50", d->measured_ms}, {"predicted_ms_p50", d->predicted_ms}};
  }
  j["queries_during_upload"] = r.queries_during_upload;
  j["queries_offloaded"] = offloaded;
  j["queries_fell_back"] = fell_back;  // recomputed here after a failed call
  j["first_query_end_ms"] = r.first_query_end_ms;
  j["latency_local_ms"] = r.plan.latency_local_ms;
  j["latency_optimal_ms"] = r.plan.latency_optimal_ms;
  std::vector<double> overhead;  // of every step: what was not server execution
  for (size_t i = 0; i < r.step_round_trip_ms.size(); ++i) {
    overhead.push_back(r.step_round_trip_ms[i] - r.step_server_ms[i]);
  }
  j["query_steps"] = r.step_round_trip_ms.size();
  j["step_round_trip_ms_p50"] = NearestRank(r.step_round_trip_ms, 0.5);
  j["step_round_trip_ms_p99"] = NearestRank(r.step_round_trip_ms, 0.99);
  j["step_overhead_ms_p50"] = NearestRank(overhead, 0.5);
  j["step_overhead_ms_p99"] = NearestRank(overhead, 0.99);
  j["server_lost"] = r.server_lost;
  j["server_error"] = r.server_error;
  j["upload_error"] = r.upload_error;
  if (setting.queries_wrong) {
    j["queries_wrong"] = *setting.queries_wrong;
    j["max_relative_error"] = setting.max_relative_error;
    // Queries that ran approximate layers are not held to the tolerance:
    // their largest error is reported beside (null: none ran).
    j["max_relative_error_approximate"] = setting.max_relative_error_approximate >= 0
                                              ? nlohmann::json(setting.max_relative_error_approximate)
                                              : nlohmann::json();
  }
  return j;
}

void OutputCheck::operator()(const ClientQuery& query, const TensorMap& outputs) {
  const double e = RelativeError(outputs, reference_);
  if (!query.exact) {
    worst_approximate_ = std::max(worst_approximate_, e);
    return;
  }
  worst_exact_ = std::max(worst_exact_, e);
  wrong_ += !(e <= kVerifyTolerance);
}

void OutputCheck::Report(ClientReportSetting* setting) const {
  setting->queries_wrong = wrong_;
  setting->max_relative_error = worst_exact_;
  setting->max_relative_error_approximate = worst_approximate_;
}

std::string ClientTraceCsv(const ClientResult& r) {
  std::ostringstream csv;
  // session: the client's session the row belongs to (-1: a query run
  // here without one); a partition's index counts within its session.
  csv << "kind,index,start_ms,end_ms,partitions_uploaded,layers_on_server,bytes_up,bytes_down,predicted_ms,"
         "session,fell_back,arrival_ms,exact\n";
  for (size_t i = 0; i < r.queries.size(); ++i) {
    const auto& q = r.queries[i];
    csv << "query," << i << "," << Fixed(q.start_ms, 3) << "," << Fixed(q.end_ms, 3) << "," << q.partitions_uploaded
        << "," << q.server_layers << "," << q.bytes_up << "," << q.bytes_down << "," << Fixed(q.predicted_ms, 3)
        << "," << q.session << "," << q.fell_back << "," << Fixed(q.arrival_ms, 3) << "," << q.exact << "\n";
  }
  std::vector<int> in_session(r.sessions.size(), 0);
  for (const auto& p : r.partitions) {
    const int i = in_session[p.session]++;
    csv << "partition," << i << "," << Fixed(p.start_ms, 3) << "," << Fixed(p.acked_ms, 3) << "," << i + 1 << ","
        << p.layers << "," << p.bytes << ",0,," << p.session << ",0,,\n";
  }
  // Every upload call: index is the partition in its session's plan,
  // bytes_up what it sent, fell_back 1 when it ended without an
  // acknowledgement (the JSON's upload_attempts say why).
  for (const auto& a : r.upload_attempts) {
    csv << "upload_attempt," << a.partition << "," << Fixed(a.start_ms, 3) << "," << Fixed(a.end_ms, 3) << ",,,"
        << a.sent << ",0,," << a.session << "," << !a.acked << ",,\n";
  }
  return csv.str();
}

}  // namespace ionn
