#include "ionn/sim.h"

#include <gtest/gtest.h>

#include "ionn/model_costs.h"
#include "ionn/onnx_io.h"
#include "ionn/zoo.h"
#include "test_graphs.h"

namespace ionn {
namespace {

CostGraph Fig2() {
  return ReadCostGraphFile(std::string(IONN_SOURCE_DIR) + "/data/cases/paper_fig2.json").value();
}

UploadPlan Plan(const CostGraph& g, const std::string& algorithm) {
  PlannerOptions o;
  o.algorithm = algorithm;
  return MakePlan(g, o).value();
}

SimResult Replay(const CostGraph& g, const UploadPlan& plan, LinkSharing sharing = LinkSharing::kNone) {
  SimOptions o;
  o.sharing = sharing;
  auto r = Simulate(g, plan, o);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return std::move(r).value();
}

TEST(SimFig2, ImprovementStepsAt8_16_32_40) {
  const CostGraph g = Fig2();
  const SimResult r = Replay(g, Plan(g, "recursive-efficiency"));
  EXPECT_EQ(r.partition_done_ms, (std::vector<double>{8, 16, 32, 40}));
  ASSERT_EQ(r.queries.size(), 6u);  // the one in flight, then five more
  EXPECT_DOUBLE_EQ(r.queries[0].start_ms, 8);
  EXPECT_DOUBLE_EQ(r.queries[0].latency_ms, 43);  // only B uploaded
  EXPECT_EQ(r.queries[0].partitions_uploaded, 1);
  EXPECT_DOUBLE_EQ(r.queries[1].start_ms, 51);
  EXPECT_DOUBLE_EQ(r.queries[1].latency_ms, 21);  // optimal
  EXPECT_EQ(r.queries_during_upload, 0);
  EXPECT_NEAR(r.queries_during_upload_fractional, 32.0 / 43, 1e-12);
  EXPECT_EQ(r.partitions_first_half, 2);  // 8 and 16 <= 20
  EXPECT_EQ(r.partitions_second_half, 2);
  EXPECT_DOUBLE_EQ(r.largest_partition_share, 16.0 / 40);
  EXPECT_DOUBLE_EQ(r.window_ms, 40);
}

TEST(SimFig2, OriginalStepsAt8And40) {
  const CostGraph g = Fig2();
  const SimResult r = Replay(g, Plan(g, "original"));
  EXPECT_EQ(r.partition_done_ms, (std::vector<double>{8, 40}));
  EXPECT_DOUBLE_EQ(r.largest_partition_share, 32.0 / 40);
}

TEST(Sim, QueryStepsAddUpToThePlacementLatency) {
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    const CostGraph g = testing::RandomCostGraph(10, testing::Shape::kAny, seed);
    LayerMask server(g.num_layers());
    for (int k = 0; k < g.num_layers(); ++k) server[k] = (seed >> (k % 5)) & 1;
    double sum = 0;
    for (const auto& s : QuerySteps(g, server)) sum += s.ms;
    EXPECT_NEAR(sum, PlacementLatencyMs(g, server), 1e-9);
  }
}

// in -> A -> B: A gains a lot on the server but sends its input up (4 ms)
// while B's 20 ms upload runs. Timelines worked out by hand.
CostGraph Contended() {
  return CostGraph::Create({{"in", 4}},
                           {{"A", {"in"}, 50, 1, 10, 0, 2}, {"B", {"A"}, 1, 1, 20, 0, 0}}, {"B"})
      .value();
}

UploadPlan TwoParts(const CostGraph& g) {
  UploadPlan p;
  p.algorithm = "manual";
  p.partitions = {{{0}, 10, 0}, {{1}, 20, 0}};
  p.latency_local_ms = 51;
  (void)g;
  return p;
}

TEST(SimLinkSharing, NoneLetsBothFlowsRunAtFullRate) {
  const CostGraph g = Contended();
  const SimResult r = Replay(g, TwoParts(g), LinkSharing::kNone);
  EXPECT_DOUBLE_EQ(r.upload_ms, 30);
  EXPECT_EQ(r.queries_during_upload, 2);  // end at 18 and 26
  EXPECT_DOUBLE_EQ(r.queries[2].end_ms, 34);
}

TEST(SimLinkSharing, FairHalvesBothWhileTheQuerySendsUp) {
  const CostGraph g = Contended();
  const SimResult r = Replay(g, TwoParts(g), LinkSharing::kFair);
  EXPECT_DOUBLE_EQ(r.upload_ms, 42);
  ASSERT_GE(r.queries.size(), 3u);
  EXPECT_DOUBLE_EQ(r.queries[0].end_ms, 22);
  EXPECT_DOUBLE_EQ(r.queries[1].end_ms, 34);
  EXPECT_DOUBLE_EQ(r.queries[2].end_ms, 46);
  EXPECT_EQ(r.queries_during_upload, 2);
}

TEST(SimLinkSharing, PriorityPausesTheUpload) {
  const CostGraph g = Contended();
  const SimResult r = Replay(g, TwoParts(g), LinkSharing::kPriority);
  EXPECT_DOUBLE_EQ(r.upload_ms, 50);
  EXPECT_EQ(r.queries_during_upload, 5);  // every 8 ms from 10; the fifth ends with the upload
  EXPECT_DOUBLE_EQ(r.queries[4].end_ms, 50);
}

// The paper's AlexNet experiment on its published profile at 80 Mbps:
// original 56.8 queries during upload, recursive-efficiency 88.1 (+55%).
TEST(SimPaper, AlexNetRecursiveEfficiencyBeatsOriginalByHalf) {
  const std::string dir = std::string(IONN_SOURCE_DIR) + "/data/profiles/odroid-xu4_gtx1080ti/";
  auto model = BuildZooModel("alexnet", 1, /*with_weights=*/false);
  ASSERT_TRUE(model.ok());
  auto profile = ReadProfileCsv(dir + "alexnet.csv");
  ASSERT_TRUE(profile.ok());
  LinkSpec link;
  auto costs = BuildCostGraph(*model, *profile, &*profile, nullptr, link);
  ASSERT_TRUE(costs.ok()) << costs.status().message();
  const SimResult original = Replay(*costs, Plan(*costs, "original"));
  const SimResult recursive = Replay(*costs, Plan(*costs, "recursive-efficiency"));
  EXPECT_GE(original.queries_during_upload, 50);
  EXPECT_LE(original.queries_during_upload, 70);
  EXPECT_GE(recursive.queries_during_upload, 1.45 * original.queries_during_upload)
      << "original " << original.queries_during_upload << ", recursive " << recursive.queries_during_upload;
}

}  // namespace
}  // namespace ionn
