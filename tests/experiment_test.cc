// The experiment's table of runs, the paper grid and its report.
#include "ionn/experiment.h"

#include <gtest/gtest.h>

#include "ionn/zoo.h"

namespace ionn {
namespace {

ExperimentRow Row(int queries) {
  ExperimentRow r;
  r.plan.algorithm = "original";
  r.result.queries_during_upload = queries;
  return r;
}

ExperimentKey Key(const std::string& source = "sim") {
  return {"alexnet", Granularity::kLayer, "original", LinkSharing::kNone, 80, source};
}

TEST(ExperimentTable, GetFindsWhatAddPut) {
  ExperimentTable t;
  EXPECT_EQ(t.Get(Key()).status().code(), StatusCode::kNotFound);
  t.Add(Key(), Row(56));
  auto r = t.Get(Key());
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ((*r)->result.queries_during_upload, 56);
  t.Add(Key(), Row(57));  // replaces
  EXPECT_EQ(t.rows().size(), 1u);
  EXPECT_EQ((*t.Get(Key()))->result.queries_during_upload, 57);
  ExperimentKey other = Key();
  other.uplink_mbps = 40;
  auto missing = t.Get(other);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("alexnet/layer/original/none/40 Mbps/sim"), std::string::npos)
      << missing.status().message();
}

TEST(ExperimentTable, LiveRowsSitBesideSimRows) {
  ExperimentTable t;
  t.Add(Key("sim"), Row(56));
  t.Add(Key("live"), Row(54));
  ASSERT_EQ(t.rows().size(), 2u);
  EXPECT_EQ((*t.Get(Key("sim")))->result.queries_during_upload, 56);
  EXPECT_EQ((*t.Get(Key("live")))->result.queries_during_upload, 54);
  // The summary of one source leaves the other out.
  const std::string sim = RenderSummaryCsv(t, "sim"), live = RenderSummaryCsv(t, "live");
  EXPECT_NE(sim.find("\nalexnet,layer,original,none,80,0,0,0,0.0000,0.00,56,"), std::string::npos) << sim;
  EXPECT_EQ(sim.find(",54,"), std::string::npos) << sim;
  EXPECT_NE(live.find(",54,"), std::string::npos) << live;
}

TEST(ExperimentTable, RowsAreOrderedByNamesAsTheSummaryListsThem) {
  ExperimentKey layer = Key(), block = Key(), fair = Key(), none = Key();
  block.granularity = Granularity::kBlock;
  EXPECT_LT(block, layer);  // "block" < "layer"
  fair.sharing = LinkSharing::kFair;
  EXPECT_LT(fair, none);  // "fair" < "none"
  ExperimentKey slow = Key();
  slow.uplink_mbps = 10;
  EXPECT_LT(slow, layer);
  EXPECT_LT(Key("live"), Key("sim"));
}

TEST(ExperimentReport, NeedsTheWholeGrid) {
  ExperimentTable t;
  t.Add(Key(), Row(56));
  auto files = RenderExperimentFiles(t, ExperimentReportOptions{});
  ASSERT_FALSE(files.ok());
  EXPECT_EQ(files.status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(RenderExperimentMarkdown(t, ExperimentReportOptions{}).ok());
}

TEST(PaperGrid, SweepMustHoldThePapersBandwidth) {
  PaperGridOptions o;
  o.sweep_mbps = {10, 40};
  ExperimentTable t;
  Status s = RunPaperGrid(o, &t);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(t.rows().empty());
}

// The grid at two bandwidths: every row there, and a report with its files.
TEST(PaperGrid, FillsEveryRowAndRenders) {
  PaperGridOptions o;
  o.sweep_mbps = {40, 80};
  o.paper_profile_dir = std::string(IONN_SOURCE_DIR) + "/data/profiles/odroid-xu4_gtx1080ti";
  ExperimentTable t;
  std::vector<std::string> progress;
  Status s = RunPaperGrid(o, &t, [&](const std::string& m) { progress.push_back(m); });
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(progress.size(), ZooModels().size());
  const size_t planners = PlannerNames().size();
  // Per model: 80 Mbps 2 granularities x 3 sharings, 40 Mbps layer/none.
  EXPECT_EQ(t.rows().size(), ZooModels().size() * planners * (2 * 3 + 1));
  for (const auto& [key, row] : t.rows()) {
    EXPECT_EQ(key.source, "sim");
    EXPECT_EQ(row.plan.algorithm, key.algorithm);
    EXPECT_GT(row.input_up_ms, 0);
  }
  ExperimentReportOptions ro;
  ro.sweep_mbps = o.sweep_mbps;
  ro.files_dir = "docs/experiments";
  auto files = RenderExperimentFiles(t, ro);
  ASSERT_TRUE(files.ok()) << files.status().message();
  EXPECT_EQ(files->size(), ZooModels().size() * planners * 3 + 3);  // + partitions, summary, plots
  EXPECT_EQ(files->count("data/alexnet_recursive-efficiency_sweep.csv"), 1u);
  EXPECT_EQ(files->at("data/alexnet_original_sweep.csv").rfind("uplink_mbps,queries_during_upload,upload_ms\n40,", 0),
            0u);
  auto md = RenderExperimentMarkdown(t, ro);
  ASSERT_TRUE(md.ok()) << md.status().message();
  EXPECT_NE(md->find("## Findings"), std::string::npos);
  EXPECT_NE(md->find("![partitions](docs/experiments/fig5_partitions.png)"), std::string::npos);
  // A live row beside them changes neither the sim report nor its rows.
  ExperimentTable with_live = t;
  ExperimentKey live = t.rows().begin()->first;
  live.source = "live";
  with_live.Add(live, t.rows().begin()->second);
  EXPECT_EQ(RenderSummaryCsv(with_live, "sim"), files->at("summary.csv"));
  EXPECT_EQ(*RenderExperimentMarkdown(with_live, ro), *md);
  // With its simulation beside it ("live-sim"), the report gains a last
  // section; every sim section stays as it was.
  ExperimentKey live_sim = {"alexnet", Granularity::kLayer, "original", LinkSharing::kNone, 80, "live-sim"};
  const ExperimentRow& original = *t.Get({"alexnet", Granularity::kLayer, "original", LinkSharing::kNone, 80, "sim"}).value();
  live = live_sim;
  live.source = "live";
  with_live.Add(live, original);
  with_live.Add(live_sim, original);
  const std::string md_live = *RenderExperimentMarkdown(with_live, ro);
  const std::string sim_sections = md->substr(md->find("## The headline"));
  EXPECT_EQ(md_live.find(sim_sections), md_live.find("## The headline"));
  const size_t section = md_live.find("## Live: the real system on this machine");
  ASSERT_NE(section, std::string::npos);
  EXPECT_GT(section, md_live.find(sim_sections));
  const SimResult& r = original.result;
  ASSERT_GT(r.queries_during_upload, 0);
  EXPECT_NE(md_live.find("| " + live.model + " | " + live.algorithm + " | 80 | " + std::to_string(r.queries_during_upload) +
                         " | " + std::to_string(r.queries_during_upload) + " | 1.00 |"),
            std::string::npos)
      << md_live.substr(section);
}

}  // namespace
}  // namespace ionn
