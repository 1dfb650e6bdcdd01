#include <cstdio>
#include <sstream>

#include <nlohmann/json.hpp>

#include "ionn/format.h"
#include "ionn/sim.h"

namespace ionn {

void AddQueryCounts(const QueryCounts& counts, const std::string& arrivals, int queries_dropped, double deadline_ms,
                    nlohmann::json* doc) {
  nlohmann::json& d = *doc;
  d["latency_ms_mean"] = counts.latency_mean_ms;
  d["latency_ms_p50"] = counts.latency_p50_ms;
  d["latency_ms_p90"] = counts.latency_p90_ms;
  d["latency_ms_p95"] = counts.latency_p95_ms;
  d["latency_ms_p99"] = counts.latency_p99_ms;
  d["throughput_qps"] = counts.throughput_qps;
  d["arrivals"] = arrivals;
  d["queries_dropped"] = queries_dropped;
  d["wait_ms_mean"] = counts.wait_mean_ms;
  d["deadline_ms"] = deadline_ms >= 0 ? nlohmann::json(deadline_ms) : nlohmann::json();
  d["deadline_met_share"] = deadline_ms >= 0 ? nlohmann::json(counts.deadline_met_share) : nlohmann::json();
}

void AddWindowFields(UploadEncoding encoding, double near_optimal_ms, double exact_from_ms, int queries_approximate,
                     nlohmann::json* doc) {
  nlohmann::json& d = *doc;
  d["upload_encoding"] = UploadEncodingName(encoding);
  d["near_optimal_ms"] = near_optimal_ms >= 0 ? nlohmann::json(near_optimal_ms) : nlohmann::json();
  d["exact_from_ms"] = exact_from_ms >= 0 ? nlohmann::json(exact_from_ms) : nlohmann::json();
  d["queries_approximate"] = queries_approximate;
}

std::string SimResultToJson(const CostGraph& graph, const SimResult& r, const UploadPlan& plan,
                            const RunSetting& setting, bool with_queries) {
  nlohmann::json doc;
  doc["format"] = "ionn-simulate/1";
  AddRunSetting(setting, &doc);
  doc["algorithm"] = plan.algorithm;
  doc["granularity"] = GranularityName(plan.granularity);
  doc["queries_during_upload"] = r.queries_during_upload;
  doc["queries_during_upload_fractional"] = r.queries_during_upload_fractional;
  doc["upload_ms"] = r.upload_ms;
  doc["first_query_end_ms"] = r.first_query_end_ms;
  doc["window_ms"] = r.window_ms;
  doc["queries_in_window"] = r.queries_in_window;
  AddWindowFields(plan.encoding, r.near_optimal_ms, r.exact_from_ms, r.queries_approximate, &doc);
  // The partitions as they ran (re-planning changes them).
  AddPartitions(graph, r.executed_plan ? *r.executed_plan : plan, &r.partition_done_ms, &doc);
  doc["replan"] = r.replan;
  doc["rate_estimates"] = nlohmann::json::array();
  for (const SimRateSample& e : r.rate_samples) {
    doc["rate_estimates"].push_back(
        {{"at_ms", e.at_ms},
         {"estimated_mbps", e.estimated_mbps >= 0 ? nlohmann::json(e.estimated_mbps) : nlohmann::json()},
         {"true_mbps", e.true_mbps}});
  }
  doc["replans"] = nlohmann::json::array();
  for (const SimReplan& e : r.replans) {
    doc["replans"].push_back({{"at_ms", e.at_ms},
                              {"estimated_mbps", e.estimated_mbps},
                              {"true_mbps", e.true_mbps},
                              {"partitions_arrived", e.partitions_arrived},
                              {"partitions_left", e.partitions_left}});
  }
  doc["partitions_first_half"] = r.partitions_first_half;
  doc["partitions_second_half"] = r.partitions_second_half;
  doc["largest_partition_share"] = r.largest_partition_share;
  doc["latency_local_ms"] = plan.latency_local_ms;
  doc["latency_optimal_ms"] = plan.latency_optimal_ms;
  doc["query_count"] = r.queries.size();
  AddQueryCounts(r.counts, r.arrivals, r.queries_dropped, r.deadline_ms, &doc);
  if (with_queries) {
    doc["queries"] = nlohmann::json::array();
    for (const auto& q : r.queries) {
      doc["queries"].push_back({{"arrival_ms", q.arrival_ms},
                                {"start_ms", q.start_ms},
                                {"end_ms", q.end_ms},
                                {"latency_ms", q.latency_ms},
                                {"partitions_uploaded", q.partitions_uploaded},
                                {"during_upload", q.during_upload},
                                {"exact", q.exact}});
    }
  }
  return doc.dump(1) + "\n";
}

std::string SimResultToTable(const SimResult& r, const UploadPlan& plan) {
  std::ostringstream out;
  char line[256];
  std::snprintf(line, sizeof line, "%s (%s granularity)\n", plan.algorithm.c_str(), GranularityName(plan.granularity));
  out << line;
  std::snprintf(line, sizeof line, "  queries during upload   %d (%.2f with the share of the one in flight)\n",
                r.queries_during_upload, r.queries_during_upload_fractional);
  out << line;
  std::snprintf(line, sizeof line, "  upload                  %s ms in %d partitions (%d in the first half, %d in the second)\n",
                Fixed(r.upload_ms, 1).c_str(), r.partitions, r.partitions_first_half, r.partitions_second_half);
  out << line;
  std::snprintf(line, sizeof line, "  largest partition       %.1f%% of the weights\n", 100 * r.largest_partition_share);
  out << line;
  std::snprintf(line, sizeof line, "  first query ends at     %s ms\n", Fixed(r.first_query_end_ms, 1).c_str());
  out << line;
  std::snprintf(line, sizeof line, "  queries in first %s ms  %d\n", Fixed(r.window_ms, 0).c_str(), r.queries_in_window);
  out << line;
  std::snprintf(line, sizeof line, "  near-optimal from       %s\n",
                r.near_optimal_ms >= 0 ? (Fixed(r.near_optimal_ms, 1) + " ms").c_str() : "never");
  out << line;
  if (r.upload_encoding != "exact") {
    std::snprintf(line, sizeof line, "  upload encoding         %s: %d queries approximate, exact from %s\n",
                  r.upload_encoding.c_str(), r.queries_approximate,
                  r.exact_from_ms >= 0 ? (Fixed(r.exact_from_ms, 1) + " ms").c_str() : "never (lossy)");
    out << line;
  }
  if (r.replan != "off") {
    std::snprintf(line, sizeof line, "  re-planning             %s: %zu re-plans%s\n", r.replan.c_str(), r.replans.size(),
                  r.replans.empty() ? "" : (", the last at " + Fixed(r.replans.back().at_ms, 0) + " ms for " +
                                            Fixed(r.replans.back().estimated_mbps, 1) + " Mbps").c_str());
    out << line;
  }
  std::snprintf(line, sizeof line, "  query latency           p50 %s ms, p90 %s ms, p99 %s ms; %.2f queries/s\n",
                Fixed(r.counts.latency_p50_ms, 1).c_str(), Fixed(r.counts.latency_p90_ms, 1).c_str(),
                Fixed(r.counts.latency_p99_ms, 1).c_str(), r.counts.throughput_qps);
  out << line;
  if (r.arrivals != "back-to-back") {
    std::snprintf(line, sizeof line, "  arrivals                %s: %zu served, %d dropped, mean wait %s ms\n",
                  r.arrivals.c_str(), r.queries.size(), r.queries_dropped, Fixed(r.counts.wait_mean_ms, 1).c_str());
    out << line;
  }
  if (r.deadline_ms >= 0) {
    std::snprintf(line, sizeof line, "  deadline %s ms        met by %.1f%% of the queries\n",
                  Fixed(r.deadline_ms, 0).c_str(), 100 * r.counts.deadline_met_share);
    out << line;
  }
  std::snprintf(line, sizeof line, "  latency                 local %s ms, optimal %s ms\n",
                Fixed(plan.latency_local_ms, 1).c_str(), Fixed(plan.latency_optimal_ms, 1).c_str());
  out << line;
  return out.str();
}

}  // namespace ionn
