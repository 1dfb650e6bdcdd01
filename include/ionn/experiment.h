// The paper's experiment (section 4) as a table of runs: per model,
// granularity, planner, link-sharing policy and uplink bandwidth, the plan
// and the protocol's metrics (queries during upload, partitions per half,
// each query's latency). The simulator fills "sim" rows now; the real
// client and server will add "live" rows beside them. Rendering turns the
// table into the report's files as strings; nothing here writes files or
// runs programs.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "ionn/granularity.h"
#include "ionn/plan.h"
#include "ionn/sim.h"
#include "ionn/weight_codec.h"

namespace ionn {

// The paper's bandwidth, Mbps: the headline runs, the link-sharing and the
// block-granularity runs use it.
constexpr double kPaperUplinkMbps = 80;

struct ExperimentKey {
  std::string model;  // a zoo model's name
  Granularity granularity = Granularity::kLayer;
  std::string algorithm;  // a PlannerNames() name
  LinkSharing sharing = LinkSharing::kNone;
  double uplink_mbps = kPaperUplinkMbps;
  std::string source = "sim";  // "sim": the simulator; "live": a real client and server

  // By model, granularity name, algorithm, link-sharing name, uplink and
  // source: the order of the summary's rows.
  bool operator<(const ExperimentKey& other) const;
};
// "alexnet/layer/original/none/80 Mbps/sim", for messages.
std::string ExperimentKeyToString(const ExperimentKey& key);

struct ExperimentRow {
  UploadPlan plan;
  SimResult result;        // the protocol's metrics, simulated or measured
  double input_up_ms = 0;  // time to send the first model input client -> server on this link
};

// Rows by key. Plain data: copyable, not synchronised.
class ExperimentTable {
 public:
  // Adds the row of `key`, replacing any row of the same key.
  void Add(const ExperimentKey& key, ExperimentRow row);
  // The row of `key` (the pointer lives as long as the table; a later Add of
  // the same key replaces what it points to), or NotFound naming the key.
  Result<const ExperimentRow*> Get(const ExperimentKey& key) const;
  const std::map<ExperimentKey, ExperimentRow>& rows() const { return rows_; }

 private:
  std::map<ExperimentKey, ExperimentRow> rows_;
};

struct PaperGridOptions {
  std::vector<double> sweep_mbps = {10, 20, 40, 80, 120, 160, 200};  // must hold kPaperUplinkMbps
  std::string paper_profile_dir;  // the published profiles (CostSources::paper_profile_dir)
  // Beyond the paper (`--upload-encoding`, `--slices`): how the weights
  // travel (weight_codec.h; lossless sizes from the seeded weights) and
  // the slices per sliced layer (slices.h; 1 none, 0 auto: PlanBestSlices
  // per model, rate and planner).
  UploadEncoding encoding = UploadEncoding::kExact;
  int slices = 1;
};

// Plans and simulates the paper's grid into `table` as "sim" rows: every
// zoo model on its published profiles (PaperCostSources), no RTT, no
// partition overhead, every planner; at kPaperUplinkMbps both granularities
// and the three link-sharing policies, at the sweep's other bandwidths layer
// granularity without sharing. `progress`, when set, is called with each
// model's name before its runs. Errors: a sweep without kPaperUplinkMbps,
// unreadable profiles, a planner's or the simulator's.
Status RunPaperGrid(const PaperGridOptions& options, ExperimentTable* table,
                    const std::function<void(const std::string& model)>& progress = nullptr);

struct ExperimentReportOptions {
  std::vector<double> sweep_mbps = {10, 20, 40, 80, 120, 160, 200};  // columns and curve rows, in this order
  // The grid's options beyond the paper as its command line gave them
  // (e.g. "--upload-encoding progressive --slices auto"); empty: none.
  std::string variant;
  std::string source = "sim";                                        // which rows the report shows
  std::string files_dir = ".";  // the report folder as the markdown refers to it (a relative path)
};

// The report's files by name relative to the report folder: "summary.csv"
// (every row of the source), per zoo model and planner
// "data/<model>_<planner>_improvement.csv" (Fig. 3), "_queries.csv" (Fig. 7)
// and "_sweep.csv", "data/partitions.csv" (Figs. 5 and 6) and "plots.gp"
// (a gnuplot script to run in the folder; it writes fig*.png and .svg).
// NotFound naming the first row of the paper grid the table lacks.
Result<std::map<std::string, std::string>> RenderExperimentFiles(const ExperimentTable& table,
                                                                 const ExperimentReportOptions& options);
std::string RenderSummaryCsv(const ExperimentTable& table, const std::string& source);
Result<std::map<std::string, std::string>> RenderCurveCsvs(const ExperimentTable& table,
                                                           const ExperimentReportOptions& options);
std::string RenderPlotScript();
// The markdown summary: the AlexNet headline against the paper, every model
// and planner, link sharing, the Findings computed from the rows, the sweep
// and the figures (under options.files_dir).
Result<std::string> RenderExperimentMarkdown(const ExperimentTable& table, const ExperimentReportOptions& options);

}  // namespace ionn
