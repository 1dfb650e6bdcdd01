#include <gtest/gtest.h>

#include "ionn/cost_graph.h"
#include "ionn/granularity.h"
#include "ionn/latency.h"
#include "test_graphs.h"

namespace ionn {
namespace {

const char* kTiny = R"({"format": "ionn-costs/1",
  "inputs": [{"name": "x", "up_ms": 1}],
  "layers": [{"name": "a", "inputs": ["x"], "client_ms": 5, "server_ms": 1, "upload_ms": 2, "up_ms": 1, "down_ms": 1},
             {"name": "b", "inputs": ["a"], "client_ms": 5, "server_ms": 1, "upload_ms": 2}],
  "outputs": ["b"]})";

std::string Replace(std::string s, const std::string& from, const std::string& to) {
  s.replace(s.find(from), from.size(), to);
  return s;
}

void ExpectError(const std::string& json, const std::string& fragment) {
  auto g = ParseCostGraphJson(json);
  ASSERT_FALSE(g.ok()) << "accepted: " << json;
  EXPECT_NE(g.status().message().find(fragment), std::string::npos) << g.status().message();
}

TEST(CostJson, ParsesAndRoundTrips) {
  auto g = ParseCostGraphJson(kTiny);
  ASSERT_TRUE(g.ok()) << g.status().message();
  EXPECT_EQ(g->num_layers(), 2);
  EXPECT_TRUE(g->is_chain());
  EXPECT_DOUBLE_EQ(g->layer(1).up_ms, 0);  // optional, defaults to 0
  auto again = ParseCostGraphJson(CostGraphToJson(*g));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(CostGraphToJson(*again), CostGraphToJson(*g));
}

TEST(CostJson, RejectsBadInputWithNames) {
  ExpectError("{", "not valid JSON");
  ExpectError(Replace(kTiny, "ionn-costs/1", "other"), "format");
  ExpectError(Replace(kTiny, "\"inputs\": [\"a\"]", "\"inputs\": [\"zzz\"]"), "zzz");
  ExpectError(Replace(kTiny, "\"inputs\": [\"x\"]", "\"inputs\": [\"b\"]"), "topological");
  ExpectError(Replace(kTiny, "\"name\": \"b\"", "\"name\": \"a\""), "duplicate");
  ExpectError(Replace(kTiny, "\"client_ms\": 5, \"server_ms\": 1, \"upload_ms\": 2}", "\"client_ms\": -5, \"server_ms\": 1, \"upload_ms\": 2}"),
              "'b' (index 1) client_ms");
  ExpectError(Replace(kTiny, "\"server_ms\": 1, \"upload_ms\": 2,", "\"server_ms\": \"fast\", \"upload_ms\": 2,"), "server_ms must be a number");
  ExpectError(Replace(kTiny, "[\"b\"]}", "[\"nope\"]}"), "output 'nope'");
  ExpectError(R"({"format": "ionn-costs/1", "inputs": [{"name": "x"}], "layers": [], "outputs": []})", "no layers");
}

TEST(Granularity, BlocksCollapseBranchesAndKeepChains) {
  // in -> a -> {b, c} -> d -> e: blocks [a], [b, c, d], [e]
  auto g = CostGraph::Create({{"in", 1}},
                             {{"a", {"in"}, 1, 1, 1, 1, 1}, {"b", {"a"}, 2, 1, 1, 1, 1},
                              {"c", {"a"}, 3, 1, 1, 1, 1}, {"d", {"b", "c"}, 4, 1, 1, 7, 8},
                              {"e", {"d"}, 5, 1, 1, 1, 1}},
                             {"e"});
  ASSERT_TRUE(g.ok());
  EXPECT_FALSE(g->is_chain());
  EXPECT_EQ(ChainCutPoints(*g), (std::vector<int>{0, 3, 4}));
  const UnitGraph u = MakeUnits(*g, Granularity::kBlock);
  ASSERT_EQ(u.units.num_layers(), 3);
  EXPECT_TRUE(u.units.is_chain());
  EXPECT_EQ(u.units.layer(1).name, "d");
  EXPECT_DOUBLE_EQ(u.units.layer(1).client_ms, 9);
  EXPECT_DOUBLE_EQ(u.units.layer(1).up_ms, 7);
  EXPECT_EQ(u.layers_of_unit[1], (std::vector<int>{1, 2, 3}));
  // On a chain blocks are layers.
  const CostGraph chain = testing::RandomCostGraph(9, testing::Shape::kChain, 3);
  EXPECT_EQ(MakeUnits(chain, Granularity::kBlock).units.num_layers(), 9);
}

}  // namespace
}  // namespace ionn
