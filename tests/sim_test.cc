#include "ionn/sim.h"

#include <gtest/gtest.h>

#include "ionn/model_costs.h"
#include "ionn/onnx_io.h"
#include "ionn/zoo.h"

#include <functional>
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
// AlexNet of the zoo (weights: shapes only) on the paper's profiles at 80 Mbps.
struct PaperAlexNet {
  PaperAlexNet() {
    const std::string dir = std::string(IONN_SOURCE_DIR) + "/data/profiles/odroid-xu4_gtx1080ti/";
    model = BuildZooModel("alexnet", 1, /*with_weights=*/false).value();
    const Profile profile = ReadProfileCsv(dir + "alexnet.csv").value();
    costs = BuildCostGraph(model, profile, &profile, nullptr, link).value();
  }
  Graph model;
  LinkSpec link;
  CostGraph costs;
};

TEST(SimPaper, AlexNetRecursiveEfficiencyBeatsOriginalByHalf) {
  const PaperAlexNet alexnet;
  const CostGraph* costs = &alexnet.costs;
  const SimResult original = Replay(*costs, Plan(*costs, "original"));
  const SimResult recursive = Replay(*costs, Plan(*costs, "recursive-efficiency"));
  EXPECT_GE(original.queries_during_upload, 50);
  EXPECT_LE(original.queries_during_upload, 70);
  EXPECT_GE(recursive.queries_during_upload, 1.45 * original.queries_during_upload)
      << "original " << original.queries_during_upload << ", recursive " << recursive.queries_during_upload;
}

// The paper's Fig. 2 sent progressively, by hand. Each high half takes
// half the upload time (A 4, B 4, C 8, D 4), so at penalty 1 the path all
// on the server costs 1 + 7 + 14 + 12 + 6 + 1 = 41 ms against 52 locally,
// and recursive-efficiency's first partition is the whole chain: highs at 20,
// lows at 40. The first query starts at 20 at the optimal 21 ms but
// approximate; the next, at 41, is exact.
TEST(SimProgressive, Fig2ByHand) {
  const CostGraph exact = Fig2();
  std::vector<double> same;
  for (const auto& l : exact.layers()) same.push_back(l.upload_ms);
  const CostGraph g = exact.WithUploads(UploadEncoding::kProgressive, same).value();
  const UploadPlan plan = Plan(g, "recursive-efficiency");
  ASSERT_EQ(plan.partitions.size(), 2u);
  EXPECT_EQ(plan.encoding, UploadEncoding::kProgressive);
  EXPECT_EQ(plan.partitions[0].phase, UnitPhase::kHigh);
  EXPECT_EQ(plan.partitions[1].phase, UnitPhase::kLow);
  EXPECT_EQ(plan.partitions[0].layers, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_DOUBLE_EQ(plan.total_upload_ms(), Plan(exact, "recursive-efficiency").total_upload_ms());
  const SimResult r = Replay(g, plan);
  EXPECT_EQ(r.partition_done_ms, (std::vector<double>{20, 40}));
  ASSERT_GE(r.queries.size(), 2u);
  EXPECT_DOUBLE_EQ(r.queries[0].start_ms, 20);
  EXPECT_DOUBLE_EQ(r.queries[0].latency_ms, 21);
  EXPECT_FALSE(r.queries[0].exact);
  EXPECT_DOUBLE_EQ(r.queries[1].start_ms, 41);
  EXPECT_TRUE(r.queries[1].exact);
  EXPECT_DOUBLE_EQ(r.near_optimal_ms, 41);
  EXPECT_DOUBLE_EQ(r.exact_from_ms, 40);
  EXPECT_EQ(r.queries_approximate, 1);
  EXPECT_DOUBLE_EQ(r.window_ms, 40);  // the fp32 upload, whatever the encoding
  // Sent exactly, recursive-efficiency's second query (the first at the
  // optimal latency) ends at 72.
  EXPECT_DOUBLE_EQ(Replay(exact, Plan(exact, "recursive-efficiency")).near_optimal_ms, 72);
}

// fp16 and int8 are never exact: a query is exact only while it runs
// nothing with weights on the server.
TEST(SimProgressive, LossyForGoodIsNeverExact) {
  const CostGraph exact = Fig2();
  std::vector<double> half;
  for (const auto& l : exact.layers()) half.push_back(l.upload_ms / 2);
  const CostGraph g = exact.WithUploads(UploadEncoding::kFp16, half).value();
  const SimResult r = Replay(g, Plan(g, "recursive-efficiency"));
  EXPECT_LT(r.exact_from_ms, 0);
  for (const auto& q : r.queries) EXPECT_FALSE(q.exact);
  EXPECT_DOUBLE_EQ(r.window_ms, 40);
  EXPECT_DOUBLE_EQ(r.upload_ms, 20);
}

// A plan's phases are checked: a low half needs its high half before it,
// a high half its low half after it, and only a progressive graph has halves.
TEST(SimProgressive, PhasesAreChecked) {
  const CostGraph exact = Fig2();
  std::vector<double> same;
  for (const auto& l : exact.layers()) same.push_back(l.upload_ms);
  const CostGraph g = exact.WithUploads(UploadEncoding::kProgressive, same).value();
  const std::vector<std::vector<int>> parts = {{0, 1, 2, 3}, {0, 1, 2, 3}};
  const std::vector<UnitPhase> good = {UnitPhase::kHigh, UnitPhase::kLow};
  auto plan = EvaluatePartitions(g, "given", Granularity::kLayer, parts, 0, &good);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  EXPECT_DOUBLE_EQ(plan->partitions[0].upload_ms, 20);
  EXPECT_DOUBLE_EQ(plan->partitions[1].latency_ms, plan->partitions[0].latency_ms);
  const std::vector<UnitPhase> low_first = {UnitPhase::kLow, UnitPhase::kHigh};
  auto bad = EvaluatePartitions(g, "given", Granularity::kLayer, parts, 0, &low_first);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("has no high half before"), std::string::npos) << bad.status().message();
  const std::vector<UnitPhase> no_low = {UnitPhase::kHigh};
  bad = EvaluatePartitions(g, "given", Granularity::kLayer, {{0, 1, 2, 3}}, 0, &no_low);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("has no low half"), std::string::npos);
  bad = EvaluatePartitions(exact, "given", Granularity::kLayer, parts, 0, &good);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("not progressive"), std::string::npos);
  // The JSON of a progressive plan reads back as the same plan.
  const UploadPlan made = Plan(g, "recursive-efficiency");
  auto back = PlanFromJson(g, PlanToJson(g, made));
  ASSERT_TRUE(back.ok()) << back.status().message();
  ASSERT_EQ(back->partitions.size(), made.partitions.size());
  for (size_t p = 0; p < made.partitions.size(); ++p) {
    EXPECT_EQ(back->partitions[p].phase, made.partitions[p].phase);
    EXPECT_EQ(back->partitions[p].layers, made.partitions[p].layers);
    EXPECT_DOUBLE_EQ(back->partitions[p].upload_ms, made.partitions[p].upload_ms);
  }
  // A plan without phases cannot be sent progressively; a plan for another
  // encoding is not this one's.
  auto whole = PlanFromJson(g, R"({"partitions": [["A", "B", "C", "D"]]})");
  ASSERT_FALSE(whole.ok());
  EXPECT_NE(whole.status().message().find("give each partition its \"phase\""), std::string::npos)
      << whole.status().message();
  auto other = PlanFromJson(g, R"({"upload_encoding": "int8", "partitions": [["A", "B", "C", "D"]]})");
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.status().message().find("upload encoding \"int8\""), std::string::npos) << other.status().message();
  // And its cost graph too, encoding and fp32 window included.
  auto costs = ParseCostGraphJson(CostGraphToJson(g));
  ASSERT_TRUE(costs.ok()) << costs.status().message();
  EXPECT_EQ(costs->upload_encoding(), UploadEncoding::kProgressive);
  EXPECT_DOUBLE_EQ(AllAtOnceUploadMs(*costs), 40);
}

// Held layers arrive exact at time 0 whatever the encoding.
TEST(SimProgressive, HeldLayersAreExact) {
  const CostGraph exact = Fig2();
  std::vector<double> same;
  for (const auto& l : exact.layers()) same.push_back(l.upload_ms);
  const CostGraph g = exact.WithUploads(UploadEncoding::kProgressive, same).value();
  LayerMask held(g.num_layers(), 0);
  held[g.FindLayer("B")] = 1;
  PlannerOptions o;
  auto plan = MakePlanWithHeld(g, held, o);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  EXPECT_EQ(plan->partitions[0].phase, UnitPhase::kWhole);
  EXPECT_DOUBLE_EQ(plan->partitions[0].upload_ms, 0);
  const std::vector<LayerMask> after = ExactLayersAfter(g, *plan);
  EXPECT_TRUE(after[1][g.FindLayer("B")]);
  ASSERT_EQ(plan->partitions[1].phase, UnitPhase::kHigh);
  for (int k : plan->partitions[1].layers) EXPECT_FALSE(after[2][k]) << g.layer(k).name;
  EXPECT_TRUE(after.back() == LayerMask(g.num_layers(), 1));
}

TEST(SimPaper, AlexNetEncodingsAgainstRecursiveEfficiency) {
  const PaperAlexNet alexnet;
  const CostGraph* costs = &alexnet.costs;
  const SimResult base = Replay(*costs, Plan(*costs, "recursive-efficiency"));
  for (UploadEncoding e : {UploadEncoding::kProgressive, UploadEncoding::kFp16, UploadEncoding::kInt8}) {
    auto encoded = EncodeUploads(*costs, alexnet.model, e, alexnet.link);
    ASSERT_TRUE(encoded.ok()) << encoded.status().message();
    EXPECT_DOUBLE_EQ(AllAtOnceUploadMs(*encoded), AllAtOnceUploadMs(*costs));
    const SimResult r = Replay(*encoded, Plan(*encoded, "recursive-efficiency"));
    EXPECT_DOUBLE_EQ(r.window_ms, base.window_ms);
    EXPECT_GT(r.queries_in_window, base.queries_in_window) << UploadEncodingName(e);
    EXPECT_LT(r.near_optimal_ms, base.near_optimal_ms) << UploadEncodingName(e);
    if (e == UploadEncoding::kProgressive) {
      EXPECT_NEAR(r.exact_from_ms, base.upload_ms, 1e-6);
    }
  }
}

// Every ordered partition of the layers of `g`, each simulated: the most
// queries in the window any plan reaches (the reference for window-search).
int BestQueriesInWindow(const CostGraph& g) {
  const int n = g.num_layers();
  int best = 0;
  std::vector<std::vector<int>> current;
  std::function<void(std::vector<int>)> place = [&](std::vector<int> left) {
    if (left.empty()) {
      const UploadPlan plan = EvaluatePartitions(g, "given", Granularity::kLayer, current, 0).value();
      best = std::max(best, Simulate(g, plan, {}).value().queries_in_window);
      return;
    }
    for (uint32_t mask = 1; mask < (1u << left.size()); ++mask) {
      std::vector<int> part, rest;
      for (size_t i = 0; i < left.size(); ++i) ((mask >> i) & 1 ? part : rest).push_back(left[i]);
      current.push_back(part);
      place(rest);
      current.pop_back();
    }
  };
  std::vector<int> all(n);
  for (int k = 0; k < n; ++k) all[k] = k;
  place(all);
  return best;
}

// window-search against every plan, simulated, on random cost graphs small
// enough to enumerate: exhaustive itself up to 6 layers, local search at 7.
TEST(SimWindowSearch, WithinOnePercentOfEveryPlanOnSmallRandomGraphs) {
  int local_search_graphs = 0, equal = 0;
  for (int n : {4, 5, 6, 7}) {
    for (uint32_t seed = 1; seed <= (n == 7 ? 3u : 8u); ++seed) {
      const CostGraph g = testing::RandomCostGraph(n, seed % 2 ? testing::Shape::kChain : testing::Shape::kAny,
                                                   100 * n + seed);
      const int best = BestQueriesInWindow(g);
      const int got = Replay(g, Plan(g, "window-search")).queries_in_window;
      const int re = Replay(g, Plan(g, "recursive-efficiency")).queries_in_window;
      EXPECT_GE(got, re) << "n " << n << " seed " << seed;
      EXPECT_GE(got, 0.99 * best) << "n " << n << " seed " << seed << ": window-search " << got << ", best " << best;
      EXPECT_LE(got, best);
      local_search_graphs += n == 7;
      equal += got == best;
    }
  }
  EXPECT_EQ(local_search_graphs, 3);
  std::printf("window-search reached the best of every plan on %d of %d graphs\n", equal, 3 * 8 + 3);
}

// Never below recursive-efficiency on the zoo models, at either
// granularity, at the issue's rates.
TEST(SimWindowSearch, NeverBelowRecursiveEfficiencyOnTheZoo) {
  const std::string dir = std::string(IONN_SOURCE_DIR) + "/data/profiles/odroid-xu4_gtx1080ti/";
  for (const auto& entry : ZooModels()) {
    const Graph model = BuildZooModel(entry.name, 1, /*with_weights=*/false).value();
    auto sources = PaperCostSources(entry.name, dir).value();
    for (double mbps : {10.0, 20.0, 40.0, 80.0, 160.0}) {
      const CostGraph costs = LoadModelCosts(model, sources, MakeLinkSpec(mbps)).value();
      for (Granularity gran : {Granularity::kLayer, Granularity::kBlock}) {
        PlannerOptions o;
        o.granularity = gran;
        o.algorithm = "recursive-efficiency";
        const int re = Replay(costs, MakePlan(costs, o).value()).queries_in_window;
        o.algorithm = "window-search";
        const int ws = Replay(costs, MakePlan(costs, o).value()).queries_in_window;
        EXPECT_GE(ws, re) << entry.name << " at " << mbps << " Mbps, " << GranularityName(gran);
      }
    }
  }
}

}  // namespace
}  // namespace ionn

namespace ionn {
namespace {

// A trace at the very rate the costs were computed at changes nothing; at
// half that rate for ever, every transfer and the window take twice as
// long (the simulator against its own constant-rate self, every zoo model,
// each link sharing).
TEST(SimLinkTrace, AConstantTraceIsTheConstantLink) {
  const std::string dir = std::string(IONN_SOURCE_DIR) + "/data/profiles/odroid-xu4_gtx1080ti/";
  const double rate = 40 * kBytesPerMsPerMbps;
  for (const auto& entry : ZooModels()) {
    SCOPED_TRACE(entry.name);
    const Graph g = BuildZooModel(entry.name, 1, /*with_weights=*/false).value();
    const CostGraph costs = LoadModelCosts(g, PaperCostSources(entry.name, dir).value(), MakeLinkSpec(40)).value();
    PlannerOptions po;
    po.algorithm = "recursive-efficiency";
    const UploadPlan plan = MakePlan(costs, po).value();
    for (LinkSharing sharing : {LinkSharing::kNone, LinkSharing::kFair, LinkSharing::kPriority}) {
      SimOptions plain;
      plain.sharing = sharing;
      SimOptions traced = plain;
      traced.uplink_trace = std::make_shared<RateTrace>(RateTrace::Create({{0, rate}}, 0).value());
      traced.downlink_trace = traced.uplink_trace;
      traced.uplink_bytes_per_ms = traced.downlink_bytes_per_ms = rate;
      const SimResult a = Simulate(costs, plan, plain).value(), b = Simulate(costs, plan, traced).value();
      EXPECT_NEAR(a.upload_ms, b.upload_ms, 1e-6 * a.upload_ms);
      EXPECT_NEAR(a.window_ms, b.window_ms, 1e-6 * a.window_ms);
      EXPECT_EQ(a.queries_in_window, b.queries_in_window);
      EXPECT_EQ(a.queries_during_upload, b.queries_during_upload);
      ASSERT_EQ(a.queries.size(), b.queries.size());
      for (size_t i = 0; i < a.queries.size(); ++i) EXPECT_NEAR(a.queries[i].end_ms, b.queries[i].end_ms, 1e-6 * a.upload_ms);
    }
    // Half the rate on the uplink: the upload and the window take twice as long.
    SimOptions half;
    half.replan.mode = ReplanMode::kOff;  // the plan as given on a slower link (int8 is not re-planned)
    half.uplink_trace = std::make_shared<RateTrace>(RateTrace::Create({{0, rate / 2}}, 0).value());
    half.uplink_bytes_per_ms = rate;
    const SimResult slow = Simulate(costs, plan, half).value();
    EXPECT_NEAR(slow.upload_ms, 2 * Simulate(costs, plan, SimOptions{}).value().upload_ms, 1e-6 * slow.upload_ms);
    EXPECT_NEAR(slow.window_ms, 2 * AllAtOnceUploadMs(costs), 1e-6 * slow.window_ms);
    // int8 at half the rate: its upload (a quarter of the bytes) ends
    // before the window (the fp32 upload on the trace), and the queries go
    // on to the window's end, as without a trace.
    const CostGraph int8 = EncodeUploads(costs, g, UploadEncoding::kInt8, MakeLinkSpec(40)).value();
    const SimResult lossy = Simulate(int8, MakePlan(int8, po).value(), half).value();
    EXPECT_LT(lossy.upload_ms, lossy.window_ms);
    EXPECT_GE(lossy.queries.back().end_ms, lossy.window_ms);
    // Without the rate the costs were computed at, a trace is refused.
    half.uplink_bytes_per_ms = 0;
    EXPECT_FALSE(Simulate(costs, plan, half).ok());
  }
}

}  // namespace
}  // namespace ionn
