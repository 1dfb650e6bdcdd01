// The one schedule of a query against its rules, checked by replaying it on
// two sides that only hold what was computed or received there, and its
// latency against an independent count of the transfers a placement needs.
#include "ionn/schedule.h"

#include <gtest/gtest.h>

#include <random>

#include "ionn/latency.h"
#include "test_graphs.h"

namespace ionn {
namespace {

// Execution time + each tensor that is made on one side and read on the
// other, once per direction: the semantics stated without a schedule.
double LatencyByCount(const CostGraph& g, const LayerMask& on_server) {
  double ms = 0;
  for (int k = 0; k < g.num_layers(); ++k) ms += on_server[k] ? g.layer(k).server_ms : g.layer(k).client_ms;
  for (int t = 0; t < g.num_tensors(); ++t) {
    const int p = g.producer(t);
    const bool made_on_server = p >= 0 && on_server[p];
    bool read_on_server = false, read_on_client = g.is_output(t);
    for (int c : g.consumers(t)) (on_server[c] ? read_on_server : read_on_client) = true;
    if (!made_on_server && read_on_server) ms += g.tensor_up_ms(t);
    if (made_on_server && read_on_client) ms += g.tensor_down_ms(t);
  }
  return ms;
}

// Replays `s` with one tensor set per side; fails on any broken rule.
void ExpectFollowsTheRules(const CostGraph& g, const LayerMask& on_server, const QuerySchedule& s) {
  std::vector<uint8_t> held[2] = {std::vector<uint8_t>(g.num_tensors(), 0), std::vector<uint8_t>(g.num_tensors(), 0)};
  for (int t = 0; t < g.num_inputs(); ++t) held[0][t] = 1;
  std::vector<int> runs(g.num_layers(), 0);
  std::vector<int> received[2] = {std::vector<int>(g.num_tensors(), 0), std::vector<int>(g.num_tensors(), 0)};
  int last_layer = -1;
  double latency = 0;
  for (size_t i = 0; i < s.segments.size(); ++i) {
    const QuerySegment& seg = s.segments[i];
    const int here = seg.side == Side::kServer ? 1 : 0, there = 1 - here;
    if (i > 0) {
      EXPECT_NE(seg.side, s.segments[i - 1].side) << "segment " << i << " does not alternate";
    }
    double transfer = 0;
    for (int t : seg.receives) {
      EXPECT_TRUE(held[there][t]) << "segment " << i << " receives tensor " << t << " the other side lacks";
      EXPECT_FALSE(held[here][t]) << "segment " << i << " receives tensor " << t << " it already holds";
      EXPECT_EQ(++received[here][t], 1) << "tensor " << t << " crosses twice";
      held[here][t] = 1;
      transfer += here ? g.tensor_up_ms(t) : g.tensor_down_ms(t);
    }
    EXPECT_NEAR(transfer, seg.transfer_ms, 1e-9);
    if (seg.side == Side::kServer) {
      EXPECT_FALSE(seg.layers.empty()) << "a server segment without layers is a useless round trip";
    }
    double exec = 0;
    for (int k : seg.layers) {
      EXPECT_GT(k, last_layer) << "layers out of topological order";
      last_layer = k;
      EXPECT_EQ(on_server[k] != 0, seg.side == Side::kServer) << "layer " << k << " on the wrong side";
      for (int t : g.layer_inputs(k)) EXPECT_TRUE(held[here][t]) << "layer " << k << " reads missing tensor " << t;
      held[here][g.tensor_of_layer(k)] = 1;
      ++runs[k];
      exec += here ? g.layer(k).server_ms : g.layer(k).client_ms;
    }
    EXPECT_NEAR(exec, seg.exec_ms, 1e-9);
    latency += transfer + exec;
  }
  ASSERT_FALSE(s.segments.empty());
  EXPECT_EQ(s.segments.back().side, Side::kClient) << "the query must end on the client";
  for (int k = 0; k < g.num_layers(); ++k) EXPECT_EQ(runs[k], 1) << "layer " << k;
  for (int t = 0; t < g.num_tensors(); ++t) {
    if (g.is_output(t)) {
      EXPECT_TRUE(held[0][t]) << "output " << t << " never reaches the client";
    }
  }
  EXPECT_NEAR(latency, s.latency_ms, 1e-9);
  EXPECT_NEAR(s.latency_ms, LatencyByCount(g, on_server), 1e-9 * (1 + s.latency_ms));
  double steps = 0;
  for (const QueryStep& step : ScheduleSteps(s)) steps += step.ms;
  EXPECT_NEAR(steps, s.latency_ms, 1e-9 * (1 + s.latency_ms));
  EXPECT_NEAR(s.uplink_ms() + s.downlink_ms(), LatencyByCount(g, on_server) - [&] {
    double e = 0;
    for (int k = 0; k < g.num_layers(); ++k) e += on_server[k] ? g.layer(k).server_ms : g.layer(k).client_ms;
    return e;
  }(), 1e-6);
}

TEST(Schedule, FollowsTheRulesOnRandomPlacements) {
  using testing::Shape;
  std::mt19937 rng(7);
  for (Shape shape : {Shape::kChain, Shape::kResidual, Shape::kBranches, Shape::kAny, Shape::kModules}) {
    for (uint32_t seed = 1; seed <= 40; ++seed) {
      const CostGraph g = testing::RandomCostGraph(3 + seed % 17, shape, seed);
      LayerMask on_server(g.num_layers());
      for (auto& b : on_server) b = rng() % 2;
      SCOPED_TRACE("shape " + std::to_string(int(shape)) + " seed " + std::to_string(seed));
      ExpectFollowsTheRules(g, on_server, ScheduleQuery(g, on_server));
    }
  }
}

TEST(Schedule, BestPlacementsFollowTheRulesAndGiveTheirLatency) {
  for (uint32_t seed = 1; seed <= 30; ++seed) {
    const CostGraph g = testing::RandomCostGraph(12, testing::Shape::kModules, seed);
    const LatencyModel model(g);
    LayerMask allowed(g.num_layers());
    for (int k = 0; k < g.num_layers(); ++k) allowed[k] = (seed >> (k % 4)) & 1;
    const Placement best = model.Best(allowed);
    const QuerySchedule s = ScheduleQuery(g, best.on_server);
    ExpectFollowsTheRules(g, best.on_server, s);
    EXPECT_NEAR(s.latency_ms, best.latency_ms, 1e-9 * (1 + s.latency_ms));
  }
}

// in -> A(client) -> B(server) -> C(server) -> D(client) -> E(server), with
// B also read by D and E, and E the output. Worked out by hand:
// [client: A] [server: receives A; B, C] [client: receives B, C; D]
// [server: receives D; E] [client: receives E].
TEST(Schedule, HandWorkedExample) {
  std::vector<CostLayer> layers = {
      {"A", {"in"}, 1, 10, 0, 2, 20},   {"B", {"A"}, 10, 1, 0, 3, 30},
      {"C", {"B"}, 10, 1, 0, 4, 40},    {"D", {"B", "C"}, 1, 10, 0, 5, 50},
      {"E", {"D", "B"}, 10, 1, 0, 6, 60}};
  const CostGraph g = CostGraph::Create({{"in", 7}}, layers, {"E"}).value();
  const LayerMask on_server = {0, 1, 1, 0, 1};
  const QuerySchedule s = ScheduleQuery(g, on_server);
  ASSERT_EQ(s.segments.size(), 5u);
  const int A = 1, B = 2, C = 3, D = 4, E = 5;  // tensor ids (input "in" is 0)
  EXPECT_EQ(s.segments[0].layers, (std::vector<int>{0}));
  EXPECT_TRUE(s.segments[0].receives.empty());
  EXPECT_EQ(s.segments[1].receives, (std::vector<int>{A}));
  EXPECT_EQ(s.segments[1].layers, (std::vector<int>{1, 2}));
  EXPECT_EQ(s.segments[2].receives, (std::vector<int>{B, C}));
  EXPECT_EQ(s.returned_by(1), (std::vector<int>{B, C}));
  EXPECT_EQ(s.segments[3].receives, (std::vector<int>{D}));  // B is still on the server
  EXPECT_EQ(s.segments[4].receives, (std::vector<int>{E}));
  EXPECT_TRUE(s.segments[4].layers.empty());
  EXPECT_EQ(s.server_segments(), 2);
  // exec 1 + 1 + 1 + 1 + 1, up A 2 + D 5, down B 30 + C 40 + E 60
  EXPECT_DOUBLE_EQ(s.latency_ms, 5 + 7 + 130);
  EXPECT_DOUBLE_EQ(s.uplink_ms(), 7);
  EXPECT_DOUBLE_EQ(s.downlink_ms(), 130);
  EXPECT_DOUBLE_EQ(PlacementLatencyMs(g, on_server), s.latency_ms);
}

// A layer nobody reads, placed last on the server (the reviewer's case):
// the query still ends on the client, with an empty answer.
TEST(Schedule, DeadLayerOnTheServerStillEndsOnTheClient) {
  std::vector<CostLayer> layers = {{"a", {"x"}, 1, 1, 0, 0, 0}, {"dead", {"x"}, 5, 1, 0, 0, 0}};
  const CostGraph g = CostGraph::Create({{"x", 2}}, layers, {"a"}).value();
  const QuerySchedule s = ScheduleQuery(g, {0, 1});
  ASSERT_EQ(s.segments.size(), 3u);
  EXPECT_EQ(s.segments[2].side, Side::kClient);
  EXPECT_TRUE(s.segments[2].receives.empty());
  EXPECT_TRUE(s.segments[2].layers.empty());
  EXPECT_DOUBLE_EQ(s.latency_ms, 4);
}

TEST(Schedule, AllLocalIsOneClientSegment) {
  const CostGraph g = testing::RandomCostGraph(9, testing::Shape::kBranches, 3);
  const QuerySchedule s = ScheduleQuery(g, LayerMask(g.num_layers(), 0));
  ASSERT_EQ(s.segments.size(), 1u);
  EXPECT_EQ(s.server_segments(), 0);
  EXPECT_EQ(s.segments[0].layers.size(), 9u);
}

}  // namespace
}  // namespace ionn
