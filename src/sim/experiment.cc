#include "ionn/experiment.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "ionn/model_costs.h"
#include "ionn/slices.h"
#include "ionn/zoo.h"

namespace ionn {
namespace {

constexpr const char* kSharings[] = {"none", "fair", "priority"};

std::string Fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// A near-optimal time in s, "never" when no query was.
std::string NearOptimalS(const SimResult& r) {
  return r.near_optimal_ms < 0 ? "never" : Fmt("%.1f", r.near_optimal_ms / 1000);
}

Granularity GranularityOf(const std::string& name) {
  return name == "block" ? Granularity::kBlock : Granularity::kLayer;
}

LinkSharing SharingOf(const std::string& name) {
  for (LinkSharing s : {LinkSharing::kNone, LinkSharing::kFair, LinkSharing::kPriority}) {
    if (name == LinkSharingName(s)) return s;
  }
  return LinkSharing::kNone;
}

// The rows of the paper grid for one model at one bandwidth: every planner;
// at kPaperUplinkMbps both granularities and every link-sharing policy,
// otherwise layer granularity without sharing.
std::vector<ExperimentKey> GridKeysAt(const std::string& model, double mbps, const std::string& source) {
  std::vector<ExperimentKey> keys;
  for (const char* gran : {"layer", "block"}) {
    if (mbps != kPaperUplinkMbps && std::string(gran) == "block") continue;
    for (const auto& algorithm : PlannerNames()) {
      for (const char* sharing : kSharings) {
        if (mbps != kPaperUplinkMbps && std::string(sharing) != "none") continue;
        keys.push_back({model, GranularityOf(gran), algorithm, SharingOf(sharing), mbps, source});
      }
    }
  }
  return keys;
}

bool HasPaperMbps(const std::vector<double>& sweep) {
  return std::find(sweep.begin(), sweep.end(), kPaperUplinkMbps) != sweep.end();
}

// Renders the report from a table checked to hold the whole paper grid.
class Report {
 public:
  static Result<Report> Create(const ExperimentTable& table, const ExperimentReportOptions& options) {
    std::vector<double> mbps_list = options.sweep_mbps;
    if (!HasPaperMbps(mbps_list)) mbps_list.push_back(kPaperUplinkMbps);
    for (const auto& entry : ZooModels()) {
      for (double mbps : mbps_list) {
        for (const ExperimentKey& key : GridKeysAt(entry.name, mbps, options.source)) {
          IONN_RETURN_IF_ERROR(table.Get(key).status());
        }
      }
    }
    return Report(table, options);
  }

  std::map<std::string, std::string> Curves() const {
    std::map<std::string, std::string> files;
    for (const auto& entry : ZooModels()) {
      for (const auto& alg : PlannerNames()) {
        const ExperimentRow& r = Get(entry.name, "layer", alg);
        std::ostringstream imp, q;
        imp << "time_ms,improvement_ms\n0,0\n";
        double improvement = 0;
        for (size_t p = 0; p < r.plan.partitions.size(); ++p) {
          const double t = r.result.partition_done_ms[p];
          imp << Fmt("%.3f", t) << "," << Fmt("%.4f", improvement) << "\n";
          improvement = r.plan.latency_local_ms - r.plan.partitions[p].latency_ms;
          imp << Fmt("%.3f", t) << "," << Fmt("%.4f", improvement) << "\n";
        }
        imp << Fmt("%.3f", r.result.upload_ms * 1.15) << "," << Fmt("%.4f", improvement) << "\n";
        q << "query,start_ms,end_ms,latency_ms,partitions_uploaded\n";
        for (size_t i = 0; i < r.result.queries.size(); ++i) {
          const auto& x = r.result.queries[i];
          q << i + 1 << "," << Fmt("%.3f", x.start_ms) << "," << Fmt("%.3f", x.end_ms) << ","
            << Fmt("%.3f", x.latency_ms) << "," << x.partitions_uploaded << "\n";
        }
        const std::string base = "data/" + entry.name + "_" + alg;
        files[base + "_improvement.csv"] = imp.str();
        files[base + "_queries.csv"] = q.str();
        std::ostringstream sw;
        sw << "uplink_mbps,queries_during_upload,upload_ms\n";
        for (double mbps : options_.sweep_mbps) {
          const ExperimentRow& s = Get(entry.name, "layer", alg, "none", mbps);
          sw << mbps << "," << s.result.queries_during_upload << "," << Fmt("%.2f", s.result.upload_ms) << "\n";
        }
        files[base + "_sweep.csv"] = sw.str();
      }
    }
    std::ostringstream parts;  // Figs. 5 and 6
    parts << "label,first_half,second_half,largest_share\n";
    for (const auto& entry : ZooModels()) {
      for (const auto& alg : PlannerNames()) {
        if (alg == "all-at-once") continue;
        const ExperimentRow& r = Get(entry.name, "layer", alg);
        parts << entry.name << ":" << alg << "," << r.result.partitions_first_half << ","
              << r.result.partitions_second_half << "," << Fmt("%.4f", r.result.largest_partition_share) << "\n";
      }
    }
    files["data/partitions.csv"] = parts.str();
    return files;
  }

  std::string Markdown() const {
    const std::string& rel = options_.files_dir;
    std::ostringstream md;
    const ExperimentRow& ao = Get("alexnet", "layer", "original");
    const ExperimentRow& ar = Get("alexnet", "layer", "recursive-efficiency");
    md << "# Experiments: the paper's section 4, replayed by the simulator\n\n";
    if (!options_.variant.empty()) {
      md << "**Beyond the paper: every planner here ran with `" << options_.variant
         << "`** (the paper's numbers quoted below are for fp32 weights, whole layers).\n\n";
    }
    md << "Generated by `bash scripts/experiment.sh` (`build/bin/ionn experiment --output "
       << rel << (options_.variant.empty() ? "" : " " + options_.variant)
       << "`); do not edit by hand. Every number below"
       << (HasLive() ? ", but those of the section *Live* and the accuracy in *Upload encodings* (which run the engine),"
                     : "")
       << " comes from the deterministic simulator (`ionn simulate`) "
          "on the paper's published per-layer profiles (ODROID XU4 client, GTX 1080 Ti server; MobileNet's server "
          "times predicted by the published per-type regression), weights of the zoo models (the published "
          "architectures), 1 Mbps = 1024*1024/8000 bytes/ms as in the authors' code, no RTT, no per-partition "
          "overhead. "
       << (HasLive() ? "Nothing but the section *Live* is measured on a network; *Live* is: the "
                       "real client and server on this machine through a shaped link, beside the simulator's "
                       "prediction for the same cost graph.\n\n"
                     : "Nothing in this file is measured on a network; the real client and server, run on this "
                       "machine through a shaped link beside the simulator's prediction for the same cost graph, are "
                       "in [docs/experiments/live_e2e.md](docs/experiments/live_e2e.md) (`bash bench/e2e.sh`).\n\n")
       << 
          "Protocol (DESIGN.md, paper section 4.1): partitions upload back to back; queries are raised back to back, "
          "the "
          "first when the first partition has arrived; each runs with the layers uploaded when it started, placed "
          "optimally; *queries during upload* counts those that finish no later than the last partition's arrival; "
          "then five more are raised. *fractional* adds the done share of the query in flight when the upload ended "
          "(the paper averages 10 runs, so its counts are fractional).\n\n";
    md << "## The headline: AlexNet at 80 Mbps\n\n"
          "| | original | recursive-efficiency | gain |\n|---|---|---|---|\n"
       << "| paper (measured, mean of 10 runs) | 56.8 | 88.1 | +55% |\n"
       << "| ionn simulator, link sharing none | " << ao.result.queries_during_upload << " ("
       << Fmt("%.1f", ao.result.queries_during_upload_fractional) << ") | " << ar.result.queries_during_upload << " ("
       << Fmt("%.1f", ar.result.queries_during_upload_fractional) << ") | "
       << Fmt("%+.0f%%", 100.0 * ar.result.queries_during_upload / ao.result.queries_during_upload - 100) << " |\n";
    for (const char* sharing : {"fair", "priority"}) {
      const ExperimentRow& o = Get("alexnet", "layer", "original", sharing);
      const ExperimentRow& r = Get("alexnet", "layer", "recursive-efficiency", sharing);
      md << "| ionn simulator, link sharing " << sharing << " | " << o.result.queries_during_upload << " ("
         << Fmt("%.1f", o.result.queries_during_upload_fractional) << ") | " << r.result.queries_during_upload << " ("
         << Fmt("%.1f", r.result.queries_during_upload_fractional) << ") | "
         << Fmt("%+.0f%%", 100.0 * r.result.queries_during_upload / o.result.queries_during_upload - 100) << " |\n";
    }
    md << "\nLink sharing: *none* lets a query's client-to-server tensors use the uplink as if the upload were not "
          "there (the planner's idealisation); *fair* halves both flows while both send; *priority* pauses the "
          "upload while a query sends.\n\n";
    md << "## Every model, every planner (80 Mbps, link sharing none)\n\n"
          "| model | granularity | algorithm | partitions (1st/2nd half) | largest partition | first query ends (ms) "
          "| queries during upload (fractional) | queries in the first all-at-once upload time |\n"
          "|---|---|---|---|---|---|---|---|\n";
    for (const auto& entry : ZooModels()) {
      for (const char* gran : {"layer", "block"}) {
        for (const auto& alg : PlannerNames()) {
          const ExperimentRow& r = Get(entry.name, gran, alg);
          md << "| " << entry.name << " | " << gran << " | " << alg << " | " << r.result.partitions << " ("
             << r.result.partitions_first_half << "/" << r.result.partitions_second_half << ") | "
             << Fmt("%.1f%%", 100 * r.result.largest_partition_share) << " | "
             << Fmt("%.1f", r.result.first_query_end_ms) << " | " << r.result.queries_during_upload << " ("
             << Fmt("%.1f", r.result.queries_during_upload_fractional) << ") | " << r.result.queries_in_window
             << " |\n";
        }
      }
    }
    md << "\nUpload of the whole model at 80 Mbps and query latency, local and with the whole model on the server:\n\n"
          "| model | upload (s) | local latency (ms) | optimal latency (ms) |\n|---|---|---|---|\n";
    for (const auto& entry : ZooModels()) {
      const ExperimentRow& r = Get(entry.name, "layer", "all-at-once");
      md << "| " << entry.name << " | " << Fmt("%.2f", r.result.upload_ms / 1000) << " | "
         << Fmt("%.1f", r.plan.latency_local_ms) << " | " << Fmt("%.1f", r.plan.latency_optimal_ms) << " |\n";
    }
    md << "\n## Link sharing, every model (layer granularity, 80 Mbps)\n\n"
          "Each cell: queries during upload / queries within the all-at-once upload time / upload time (s).\n\n"
          "| model | algorithm | none | fair | priority |\n|---|---|---|---|---|\n";
    for (const auto& entry : ZooModels()) {
      for (const auto& alg : PlannerNames()) {
        md << "| " << entry.name << " | " << alg;
        for (const char* sharing : {"none", "fair", "priority"}) {
          const SimResult& r = Get(entry.name, "layer", alg, sharing).result;
          md << " | " << r.queries_during_upload << " / " << r.queries_in_window << " / "
             << Fmt("%.2f", r.upload_ms / 1000);
        }
        md << " |\n";
      }
    }
    md << Findings();
    md << "\n## Bandwidth sweep (layer granularity, link sharing none): queries during upload\n\n| model | algorithm |";
    for (double mbps : options_.sweep_mbps) md << " " << mbps << " Mbps |";
    md << "\n|---|---|";
    for (size_t i = 0; i < options_.sweep_mbps.size(); ++i) md << "---|";
    md << "\n";
    for (const auto& entry : ZooModels()) {
      for (const auto& alg : PlannerNames()) {
        md << "| " << entry.name << " | " << alg << " |";
        for (double mbps : options_.sweep_mbps)
          md << " " << Get(entry.name, "layer", alg, "none", mbps).result.queries_during_upload << " |";
        md << "\n";
      }
    }
    md << "\n## Figures\n\n";
    md << "Partitions per half of the upload (paper Fig. 5) and the largest partition's share (Fig. 6):\n\n"
       << "![partitions](" << rel << "/fig5_partitions.png)\n![largest](" << rel << "/fig6_largest_partition.png)\n\n";
    for (const auto& entry : ZooModels()) {
      md << "### " << entry.name << "\n\n![improvement](" << rel << "/fig3_improvement_" << entry.name
         << ".png)\n![queries](" << rel << "/fig7_query_latency_" << entry.name << ".png)\n![sweep](" << rel
         << "/sweep_" << entry.name << ".png)\n\n";
    }
    md << "SVG versions and every CSV behind the figures are in `" << rel << "/`.\n";
    md << LiveSection();
    return md.str();
  }

 private:
  // A "live" row with its "live-sim" row.
  bool HasLive() const {
    for (const auto& [key, row] : table_.rows()) {
      ExperimentKey sim_key = key;
      sim_key.source = "live-sim";
      if (key.source == "live" && table_.Get(sim_key).ok()) return true;
    }
    return false;
  }

  // The "live" rows (measured) beside their "live-sim" rows (the simulator
  // on the same cost graph); empty without live rows.
  std::string LiveSection() const {
    if (!HasLive()) return "";
    std::ostringstream md;
    md << "\n## Live: the real system on this machine\n\n"
          "Generated by `ionn experiment --live` (`bash scripts/experiment.sh` passes it): in one process an edge "
          "server (`ionn serve`), a link shaped to the bandwidth in both directions by `ionn link`'s proxy (no added "
          "RTT), and a client (`ionn client`) on the zoo model with seeded weights, emulating the paper's ODROID XU4: "
          "every local segment is computed, then padded to the published profile's time. The server's per-layer "
          "times are measured on this machine first (1 thread), and client and simulator plan with them, so both "
          "replay the same plan. Every run is a first meeting (the server's held layers are ignored). *sim*: the "
          "simulator on that run's cost graph with link sharing *fair* (the upload and the queries are two TCP "
          "connections on one link). These numbers depend on the machine and its load; the sections above do "
          "not.\n\n"
          "| model | algorithm | Mbps | queries during upload: live | sim | live/sim | first offloaded query "
          "ends, ms: live | sim | upload s: live | sim | partitions | queries in window: live | sim | "
          "near-optimal from, s: live | sim |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    std::map<std::string, double> live_queries, live_window, sim_window;  // by model/algorithm
    for (const auto& [key, row] : table_.rows()) {
      if (key.source != "live") continue;
      ExperimentKey sim_key = key;
      sim_key.source = "live-sim";
      auto sim = table_.Get(sim_key);
      if (!sim.ok()) continue;
      const SimResult& l = row.result;
      const SimResult& m = (*sim)->result;
      md << "| " << key.model << " | " << key.algorithm << " | " << Fmt("%g", key.uplink_mbps) << " | "
         << l.queries_during_upload << " | " << m.queries_during_upload << " | "
         << Fmt("%.2f", m.queries_during_upload > 0 ? double(l.queries_during_upload) / m.queries_during_upload : 0)
         << " | " << Fmt("%.0f", FirstOffloadedQueryEndMs(row.plan, l)) << " | "
         << Fmt("%.0f", FirstOffloadedQueryEndMs((*sim)->plan, m)) << " | " << Fmt("%.1f", l.upload_ms / 1000) << " | "
         << Fmt("%.1f", m.upload_ms / 1000) << " | " << row.plan.partitions.size() << " | " << l.queries_in_window
         << " | " << m.queries_in_window << " | " << NearOptimalS(l) << " | " << NearOptimalS(m) << " |\n";
      live_queries[key.model + "/" + key.algorithm] = l.queries_during_upload;
      live_window[key.model + "/" + key.algorithm] = l.queries_in_window;
      sim_window[key.model + "/" + key.algorithm] = m.queries_in_window;
    }
    for (const auto& entry : ZooModels()) {
      auto o = live_queries.find(entry.name + "/original");
      auto r = live_queries.find(entry.name + "/recursive-efficiency");
      if (o == live_queries.end() || r == live_queries.end() || o->second <= 0) continue;
      md << "\n" << entry.name << ", live: recursive-efficiency served " << Fmt("%.2f", r->second / o->second)
         << " times the queries during upload of original (the paper: 88.1 / 56.8 = 1.55 on AlexNet).\n";
      // ionn's own variants (DESIGN.md, "Beyond the paper") against the
      // paper's best, live and in the simulator.
      const std::string prefix = entry.name + "/";
      const double base = live_window[prefix + "recursive-efficiency"], sim_base = sim_window[prefix + "recursive-efficiency"];
      for (const auto& [name, count] : live_window) {
        if (name.rfind(prefix, 0) != 0 || base <= 0 || sim_base <= 0) continue;
        const std::string algorithm = name.substr(prefix.size());
        if (algorithm == "original" || algorithm == "recursive-efficiency") continue;
        md << "\n" << entry.name << ", live: " << algorithm << " finished " << Fmt("%.2f", count / base)
           << " times the queries in the window of recursive-efficiency with exact uploads (simulated: "
           << Fmt("%.2f", sim_window[name] / sim_base) << ").\n";
      }
    }
    return md.str();
  }
  Report(const ExperimentTable& table, const ExperimentReportOptions& options) : table_(table), options_(options) {}

  const ExperimentRow& Get(const std::string& model, const std::string& gran, const std::string& alg,
                           const std::string& sharing = "none", double mbps = kPaperUplinkMbps) const {
    return table_.rows().at({model, GranularityOf(gran), alg, SharingOf(sharing), mbps, options_.source});
  }

  // Statements computed from the runs, so that they stay true when the
  // planners or the data change.
  std::string Findings() const {
    std::ostringstream md;
    md << "\n## Findings\n\n";
    const char* closest = nullptr;
    double best_err = 1e9;
    std::string errors;
    for (const char* sharing : {"none", "fair", "priority"}) {
      const double o = Get("alexnet", "layer", "original", sharing).result.queries_during_upload_fractional;
      const double r = Get("alexnet", "layer", "recursive-efficiency", sharing).result.queries_during_upload_fractional;
      const double err = std::fabs(o - 56.8) / 56.8 + std::fabs(r - 88.1) / 88.1;
      errors += std::string(errors.empty() ? "" : ", ") + sharing + " " + Fmt("%.3f", err);
      if (err < best_err) best_err = err, closest = sharing;
    }
    const ExperimentRow& ao = Get("alexnet", "layer", "original");
    const ExperimentRow& ar = Get("alexnet", "layer", "recursive-efficiency");
    md << "- **AlexNet target.** original " << ao.result.queries_during_upload << " and recursive-efficiency "
       << ar.result.queries_during_upload << " queries during upload (ratio "
       << Fmt("%.2f", double(ar.result.queries_during_upload) / ao.result.queries_during_upload)
       << "); the paper measured 56.8 and 88.1 (ratio 1.55). The link-sharing policy closest to the paper's two "
          "counts (fractional) is **"
       << closest << "** (sum of the two relative errors: " << errors << ").\n";
    const SimResult& fair = Get("alexnet", "layer", "recursive-efficiency", "fair").result;
    const SimResult& prio = Get("alexnet", "layer", "recursive-efficiency", "priority").result;
    md << "- **Why the policies differ.** A query that runs layers on the server first sends the input image up ("
       << Fmt("%.1f", ao.input_up_ms)
       << " ms at 80 Mbps for AlexNet). Under *fair* the query and the upload each slow down while both send, so "
          "queries "
          "get "
          "longer and the upload gets longer ("
       << Fmt("%.2f", fair.upload_ms / 1000) << " s instead of " << Fmt("%.2f", ar.result.upload_ms / 1000)
       << " s for recursive-efficiency on AlexNet): the count during upload "
          "barely moves, the count within the fixed window drops. Under *priority* the upload pauses for every "
          "image ("
       << Fmt("%.2f", prio.upload_ms / 1000)
       << " s), so many more queries fit before it ends although "
          "the model arrives later; *queries during upload* then rewards a slower upload, and the window count is the "
          "fair comparison. A client that sends queries and the upload over two TCP connections on one link behaves "
          "like *fair*; the paper does not say how its client shared the link. *none* and *fair* give nearly the same "
          "counts during upload here, so the paper's counts cannot tell them apart; the real runtime will.\n";
    md << "- **The other models and the two granularities.** Queries during upload, original -> "
          "recursive-efficiency (80 Mbps, link sharing none). *Verdict* calls a gain of at least 20% and at least "
          "3 queries a gain, anything less little difference; the paper saw a gain for ResNet and no clear "
          "difference for Inception, GoogLeNet and MobileNet.\n\n"
          "  | model | layer granularity | block granularity | verdict (layer / block) | paper |\n"
          "  |---|---|---|---|---|\n";
    const std::map<std::string, std::string> paper = {{"alexnet", "gain (+55%)"},
                                                      {"googlenet", "no clear difference"},
                                                      {"resnet50", "gain"},
                                                      {"inception_bn", "no clear difference"},
                                                      {"mobilenet", "no clear difference"}};
    std::string differs;
    for (const auto& entry : ZooModels()) {
      std::string cells[2], verdicts[2];
      int i = 0;
      for (const char* gran : {"layer", "block"}) {
        const int o = Get(entry.name, gran, "original").result.queries_during_upload;
        const int r = Get(entry.name, gran, "recursive-efficiency").result.queries_during_upload;
        const double gain = o > 0 ? double(r) / o - 1 : 0;
        cells[i] = std::to_string(o) + " -> " + std::to_string(r) + " (" + Fmt("%+.0f%%", 100 * gain) + ")";
        verdicts[i] = gain >= 0.2 && r - o >= 3 ? "gain" : "little difference";
        ++i;
      }
      md << "  | " << entry.name << " | " << cells[0] << " | " << cells[1] << " | " << verdicts[0] << " / "
         << verdicts[1] << " | " << paper.at(entry.name) << " |\n";
      const bool paper_gain = paper.at(entry.name).rfind("gain", 0) == 0;
      for (int k = 0; k < 2; ++k) {
        if ((verdicts[k] == "gain") != paper_gain) {
          differs += std::string(differs.empty() ? "" : ", ") + entry.name + (k ? " (block)" : " (layer)");
        }
      }
    }
    double lo = 1e18, hi = 0, lo_q = 1e18, hi_q = 0;
    for (const char* m : {"googlenet", "inception_bn", "mobilenet"}) {
      const ExperimentRow& r = Get(m, "layer", "all-at-once");
      lo = std::min(lo, r.result.upload_ms), hi = std::max(hi, r.result.upload_ms);
      lo_q = std::min(lo_q, r.result.upload_ms / r.plan.latency_optimal_ms);
      hi_q = std::max(hi_q, r.result.upload_ms / r.plan.latency_optimal_ms);
    }
    md << "\n  GoogLeNet, Inception-BN and MobileNet upload in " << Fmt("%.1f", lo / 1000) << " to "
       << Fmt("%.1f", hi / 1000) << " s, " << Fmt("%.0f", lo_q) << " to " << Fmt("%.0f", hi_q)
       << " optimal query latencies, so any plan leaves little room: a difference of a few queries is a large "
          "percentage of a small count. Verdicts that differ from the paper's: "
       << (differs.empty() ? std::string("none") : differs) << ".\n";
    {
      std::string rows;
      int gains = 0;
      for (const auto& entry : ZooModels()) {
        for (const char* gran : {"layer", "block"}) {
          const SimResult& r = Get(entry.name, gran, "recursive-efficiency").result;
          const SimResult& t = Get(entry.name, gran, "throughput-search").result;
          rows += std::string(rows.empty() ? "" : ", ") + entry.name + " " + gran + " " +
                  Fmt("%.2f", r.queries_during_upload_fractional) + " -> " +
                  Fmt("%.2f", t.queries_during_upload_fractional);
          gains += t.queries_during_upload_fractional > r.queries_during_upload_fractional + 1e-9;
        }
      }
      md << "- **ionn's throughput-search** reorders recursive-efficiency's partitions by adjacent swaps while "
            "they raise the protocol's query count computed from the planner's own numbers. Fractional queries "
            "during upload, recursive-efficiency -> throughput-search (none): "
         << rows << ". It gains on " << gains
         << " of 10 model/granularity pairs. At layer granularity it cannot lose under *none* (its "
            "objective is that count; at block granularity it counts with the block model's latencies). "
            "recursive-efficiency's order is already at or near a local optimum of the count here.\n";
    }
    md << "- **Weightless partitions.** With no per-partition overhead, a layer without weights (ReLU, pooling, "
          "dropout) uploads in 0 ms, so its efficiency is infinite when it helps and recursive-efficiency makes it a "
          "partition of its own (AlexNet: "
       << ar.result.partitions
       << " partitions, several of 0 bytes). "
          "`--partition-overhead-ms` charges each partition and merges them.\n";
    return md.str();
  }

  const ExperimentTable& table_;
  const ExperimentReportOptions& options_;
};

}  // namespace

bool ExperimentKey::operator<(const ExperimentKey& o) const {
  if (model != o.model) return model < o.model;
  if (granularity != o.granularity)
    return std::strcmp(GranularityName(granularity), GranularityName(o.granularity)) < 0;
  if (algorithm != o.algorithm) return algorithm < o.algorithm;
  if (sharing != o.sharing) return std::strcmp(LinkSharingName(sharing), LinkSharingName(o.sharing)) < 0;
  if (uplink_mbps != o.uplink_mbps) return uplink_mbps < o.uplink_mbps;
  return source < o.source;
}

std::string ExperimentKeyToString(const ExperimentKey& key) {
  std::ostringstream s;
  s << key.model << "/" << GranularityName(key.granularity) << "/" << key.algorithm << "/"
    << LinkSharingName(key.sharing) << "/" << key.uplink_mbps << " Mbps/" << key.source;
  return s.str();
}

void ExperimentTable::Add(const ExperimentKey& key, ExperimentRow row) { rows_[key] = std::move(row); }

Result<const ExperimentRow*> ExperimentTable::Get(const ExperimentKey& key) const {
  auto it = rows_.find(key);
  if (it == rows_.end()) return Status::NotFound("the experiment has no run " + ExperimentKeyToString(key));
  return &it->second;
}

Status RunPaperGrid(const PaperGridOptions& options, ExperimentTable* table,
                    const std::function<void(const std::string& model)>& progress) {
  if (!HasPaperMbps(options.sweep_mbps)) return Status::Invalid("the bandwidth sweep must include the paper's 80 Mbps");
  if (options.slices < 0 || options.slices > 64) return Status::Invalid("slices: 1 to 64, or 0 for auto");
  CostSources sources;
  sources.paper_profiles = true;
  sources.paper_profile_dir = options.paper_profile_dir;
  const std::vector<int> counts = options.slices == 0 ? std::vector<int>{1, 2, 4, 8} : std::vector<int>{options.slices};
  // Only the lossless encoding's sizes depend on the weights' values.
  const bool with_weights = options.encoding == UploadEncoding::kLossless;
  for (const auto& entry : ZooModels()) {
    if (progress) progress(entry.name);
    IONN_ASSIGN_OR_RETURN(const Graph graph, BuildZooModel(entry.name, 1, with_weights));
    std::map<int, std::pair<std::vector<LayerSlices>, Graph>> sliced;  // per count: the cut and the model
    for (int n : counts) {
      std::vector<LayerSlices> cut = ChooseSlices(graph, SliceOptions{n});
      IONN_ASSIGN_OR_RETURN(Graph g, SliceGraph(graph, cut));
      sliced.emplace(n, std::make_pair(std::move(cut), std::move(g)));
    }
    for (double mbps : options.sweep_mbps) {
      const LinkSpec link = MakeLinkSpec(mbps);
      IONN_ASSIGN_OR_RETURN(const CostGraph fp32, LoadModelCosts(graph, sources, link));
      std::map<int, CostGraph> costs;
      for (const auto& [n, cut_and_model] : sliced) {
        IONN_ASSIGN_OR_RETURN(const CostGraph c, SliceCosts(fp32, cut_and_model.first, link.rtt_ms));
        IONN_ASSIGN_OR_RETURN(CostGraph encoded, EncodeUploads(c, cut_and_model.second, options.encoding, link));
        costs.emplace(n, std::move(encoded));
      }
      for (const ExperimentKey& key : GridKeysAt(entry.name, mbps, "sim")) {
        PlannerOptions po;
        po.algorithm = key.algorithm;
        po.granularity = key.granularity;
        IONN_ASSIGN_OR_RETURN(SlicedPlan best, PlanBestSlices([&](int n) { return costs.at(n); },
                                                              [&](const CostGraph& c) { return MakePlan(c, po); },
                                                              counts));
        SimOptions so;
        so.sharing = key.sharing;
        IONN_ASSIGN_OR_RETURN(SimResult result, Simulate(best.costs, best.plan, so));
        table->Add(key, ExperimentRow{std::move(best.plan), std::move(result), best.costs.inputs()[0].up_ms});
      }
    }
  }
  return Status::Ok();
}

std::string RenderSummaryCsv(const ExperimentTable& table, const std::string& source) {
  std::ostringstream csv;
  csv << "model,granularity,algorithm,link_sharing,uplink_mbps,partitions,partitions_first_half,"
         "partitions_second_half,largest_partition_share,upload_ms,queries_during_upload,"
         "queries_during_upload_fractional,first_query_end_ms,window_ms,queries_in_window,"
         "latency_local_ms,latency_optimal_ms\n";
  for (const auto& [k, r] : table.rows()) {
    if (k.source != source) continue;
    const SimResult& s = r.result;
    csv << k.model << "," << GranularityName(k.granularity) << "," << k.algorithm << "," << LinkSharingName(k.sharing)
        << "," << k.uplink_mbps << "," << s.partitions << "," << s.partitions_first_half << ","
        << s.partitions_second_half << "," << Fmt("%.4f", s.largest_partition_share) << "," << Fmt("%.2f", s.upload_ms)
        << "," << s.queries_during_upload << "," << Fmt("%.3f", s.queries_during_upload_fractional) << ","
        << Fmt("%.2f", s.first_query_end_ms) << "," << Fmt("%.2f", s.window_ms) << "," << s.queries_in_window << ","
        << Fmt("%.3f", r.plan.latency_local_ms) << "," << Fmt("%.3f", r.plan.latency_optimal_ms) << "\n";
  }
  return csv.str();
}

Result<std::map<std::string, std::string>> RenderCurveCsvs(const ExperimentTable& table,
                                                           const ExperimentReportOptions& options) {
  IONN_ASSIGN_OR_RETURN(const Report report, Report::Create(table, options));
  return report.Curves();
}

std::string RenderPlotScript() {
  std::ostringstream gp;
  gp << "# Generated by `ionn experiment`; run from this folder: gnuplot plots.gp\n"
        "set datafile separator ','\nset key autotitle columnhead\nset grid\n"
        "terms = 'pngcairo svg'\nexts = 'png svg'\n";
  const std::vector<std::string> styles = {"lw 2 dt 3", "lw 2", "lw 2 dt 2", "lw 2.5", "lw 2 dt 4"};
  auto each_term = [&](const std::string& name, const std::string& body) {
    gp << "do for [i=1:2] {\n  if (i == 1) { set terminal pngcairo size 900,520 font ',10' } "
          "else { set terminal svg size 900,520 font ',10' }\n"
       << "  set output sprintf('" << name << ".%s', word(exts, i))\n"
       << "  unset xlabel; unset ylabel; unset logscale; set yrange [*:*]; set xtics norotate; set style data lines\n"
       << body << "}\n";
  };
  // One plot line per planner (from `first` on) reading data/<model>_<planner>_<kind>.csv.
  auto lines = [&](const std::string& m, const std::string& kind, const std::string& how, size_t first) {
    std::string out;
    for (size_t a = first; a < PlannerNames().size(); ++a) {
      const std::string& alg = PlannerNames()[a];
      out += std::string(a > first ? ", " : "") + "'data/" + m + "_" + alg + "_" + kind + ".csv' " + how + " " +
             styles[a % styles.size()] + " title '" + alg + "'";
    }
    return out;
  };
  for (const auto& entry : ZooModels()) {
    const std::string& m = entry.name;
    each_term("fig3_improvement_" + m,
              "  set title '" + m +
                  ": latency improvement while uploading (80 Mbps, layer granularity)' noenhanced\n"
                  "  set xlabel 'time since the upload started (s)'\n  set ylabel 'latency improvement (ms)'\n"
                  "  set key bottom right\n  plot " +
                  lines(m, "improvement", "using ($1/1000):2 with lines", 0) + "\n");
    each_term("fig7_query_latency_" + m,
              "  set title '" + m +
                  ": query latency over time (80 Mbps, layer granularity)' noenhanced\n"
                  "  set xlabel 'query end (s)'\n  set ylabel 'query latency (ms)'\n  set key top right\n"
                  "  set logscale y\n  plot " +
                  lines(m, "queries", "using ($3/1000):4 with steps", 1) + "\n  unset logscale y\n");
    each_term("sweep_" + m,
              "  set title '" + m +
                  ": queries during upload over bandwidth (layer granularity)' noenhanced\n"
                  "  set xlabel 'uplink (Mbps)'\n  set ylabel 'queries during upload'\n  set key top right\n  plot " +
                  lines(m, "sweep", "using 1:2 with linespoints", 0) + "\n");
  }
  each_term(
      "fig5_partitions",
      "  set title 'partitions uploaded in the first and second half of the upload (80 Mbps, layer granularity)'\n"
      "  set style data histograms\n  set style histogram rowstacked\n  set style fill solid 0.8 border -1\n"
      "  set boxwidth 0.7\n  set xtics rotate by -45 noenhanced\n  set ylabel 'partitions'\n  set key top left\n"
      "  set rmargin 12\n"
      "  plot 'data/partitions.csv' using 2:xtic(1) title 'first half', '' using 3 title 'second half'\n"
      "  set style data lines\n  set xtics norotate\n  unset rmargin\n");
  each_term("fig6_largest_partition",
            "  set title 'largest partition, share of the model (80 Mbps, layer granularity)'\n"
            "  set style data histograms\n  set style histogram clustered\n  set style fill solid 0.8 border -1\n"
            "  set boxwidth 0.7\n  set xtics rotate by -45 noenhanced\n  set ylabel 'share of all weights'\n"
            "  set rmargin 12\n"
            "  set yrange [0:1.05]\n  plot 'data/partitions.csv' using 4:xtic(1) notitle\n"
            "  set yrange [*:*]\n  set style data lines\n  set xtics norotate\n  unset rmargin\n");

  return gp.str();
}

Result<std::map<std::string, std::string>> RenderExperimentFiles(const ExperimentTable& table,
                                                                 const ExperimentReportOptions& options) {
  IONN_ASSIGN_OR_RETURN(auto files, RenderCurveCsvs(table, options));
  files["summary.csv"] = RenderSummaryCsv(table, options.source);
  files["plots.gp"] = RenderPlotScript();
  return files;
}

Result<std::string> RenderExperimentMarkdown(const ExperimentTable& table, const ExperimentReportOptions& options) {
  IONN_ASSIGN_OR_RETURN(const Report report, Report::Create(table, options));
  return report.Markdown();
}

}  // namespace ionn
