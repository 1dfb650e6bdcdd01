#include "ionn/latency.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <limits>

#include "test_graphs.h"

namespace ionn {
namespace {

using testing::RandomCostGraph;
using testing::Shape;

// An independent transcription of the semantics, tensor by tensor.
double NaiveLatency(const CostGraph& g, const LayerMask& server) {
  double ms = 0;
  for (int k = 0; k < g.num_layers(); ++k) ms += server[k] ? g.layer(k).server_ms : g.layer(k).client_ms;
  for (int t = 0; t < g.num_tensors(); ++t) {
    const bool on_server = t >= g.num_inputs() && server[t - g.num_inputs()];
    bool up = false, down = on_server && g.is_output(t);
    for (int k = 0; k < g.num_layers(); ++k) {
      for (int in : g.layer_inputs(k)) {
        if (in != t) continue;
        if (server[k] && !on_server) up = true;
        if (!server[k] && on_server) down = true;
      }
    }
    if (up) ms += t < g.num_inputs() ? g.inputs()[t].up_ms : g.layer(t - g.num_inputs()).up_ms;
    if (down) ms += g.layer(t - g.num_inputs()).down_ms;
  }
  return ms;
}

double Enumerate(const CostGraph& g, const LayerMask& allowed, const LayerMask& forced) {
  const int n = g.num_layers();
  double best = std::numeric_limits<double>::infinity();
  LayerMask server(n);
  for (uint32_t bits = 0; bits < (1u << n); ++bits) {
    bool ok = true;
    for (int k = 0; k < n; ++k) {
      server[k] = (bits >> k) & 1;
      ok = ok && (!server[k] || allowed[k] || forced[k]) && (server[k] || !forced[k]);
    }
    if (ok) best = std::min(best, NaiveLatency(g, server));
  }
  return best;
}

LayerMask RandomMask(int n, std::mt19937& rng, int one_in) {
  LayerMask m(n);
  for (auto& b : m) b = rng() % one_in == 0;
  return m;
}

TEST(Latency, MinCutEqualsEnumerationOnRandomDags) {
  int checked = 0;
  for (Shape shape : {Shape::kChain, Shape::kResidual, Shape::kBranches, Shape::kAny, Shape::kModules}) {
    for (uint32_t seed = 1; seed <= 25; ++seed) {
      const int n = 2 + static_cast<int>(seed % 13);  // 2..14 layers
      const CostGraph g = RandomCostGraph(n, shape, seed * 7919 + static_cast<int>(shape));
      const LatencyModel model(g);
      std::mt19937 rng(seed);
      const LayerMask allowed = RandomMask(n, rng, 2);
      const LayerMask forced = RandomMask(n, rng, 5);
      const double expected = Enumerate(g, allowed, forced);
      const Placement p = model.BestByMinCut(allowed, &forced, nullptr);
      EXPECT_NEAR(p.latency_ms, expected, 1e-9) << "shape " << int(shape) << " seed " << seed;
      EXPECT_NEAR(NaiveLatency(g, p.on_server), p.latency_ms, 1e-9);
      for (int k = 0; k < n; ++k) {
        EXPECT_TRUE(!p.on_server[k] || allowed[k] || forced[k]);
        EXPECT_TRUE(p.on_server[k] || !forced[k]);
      }
      ++checked;
    }
  }
  EXPECT_EQ(checked, 125);
}

TEST(Latency, ChainPathEqualsMinCutAndEnumeration) {
  for (uint32_t seed = 1; seed <= 40; ++seed) {
    const int n = 1 + static_cast<int>(seed % 14);
    const CostGraph g = RandomCostGraph(n, Shape::kChain, seed);
    ASSERT_TRUE(g.is_chain());
    const LatencyModel model(g);
    std::mt19937 rng(seed);
    const LayerMask allowed = RandomMask(n, rng, 2), forced = RandomMask(n, rng, 6);
    const double chain = model.BestByChainPath(allowed, &forced, nullptr).latency_ms;
    EXPECT_NEAR(chain, model.BestByMinCut(allowed, &forced, nullptr).latency_ms, 1e-9);
    EXPECT_NEAR(chain, Enumerate(g, allowed, forced), 1e-9);
  }
}

TEST(Latency, ForcedRunsMatchFullSolveOnChainsAndDags) {
  for (Shape shape : {Shape::kChain, Shape::kResidual, Shape::kBranches, Shape::kAny, Shape::kModules, Shape::kLocal,
                      Shape::kAttention}) {
    for (uint32_t seed = 1; seed <= 10; ++seed) {
      const int n = 3 + static_cast<int>(seed % 10);
      const CostGraph g = RandomCostGraph(n, shape, seed + 100);
      const LatencyModel model(g);
      std::mt19937 rng(seed);
      const LayerMask uploaded = RandomMask(n, rng, 2);
      const RunLatency runs(model, uploaded);
      EXPECT_NEAR(runs.base_ms(), Enumerate(g, uploaded, LayerMask(n, 0)), 1e-9);
      for (int i = 0; i < n; ++i) {
        for (int j = i; j < n; ++j) {
          LayerMask forced(n, 0);
          for (int k = i; k <= j; ++k) forced[k] = 1;
          EXPECT_NEAR(runs.ForcedRunMs(i, j), Enumerate(g, uploaded, forced), 1e-9)
              << "run " << i << ".." << j << " seed " << seed;
        }
      }
    }
  }
}

// The block decomposition against minimum cuts on larger residual and
// multi-branch graphs, with random uploaded sets and every forced run.
TEST(Latency, BlockDecompositionMatchesMinCutOnLargerDags) {
  int fast = 0, non_chain = 0;
  for (Shape shape : {Shape::kModules, Shape::kLocal, Shape::kAttention}) {
    for (uint32_t seed = 1; seed <= 12; ++seed) {
      const CostGraph g = RandomCostGraph(20 + 3 * seed, shape, seed + 500);
      const LatencyModel model(g);
      std::mt19937 rng(seed);
      const LayerMask uploaded = RandomMask(g.num_layers(), rng, 2);
      const RunLatency runs(model, uploaded);
      fast += runs.fast();
      non_chain += !g.is_chain();
      EXPECT_NEAR(runs.base_ms(), model.BestByMinCut(uploaded, nullptr, nullptr).latency_ms, 1e-9);
      for (int i = 0; i < g.num_layers(); ++i) {
        for (int j = i; j < g.num_layers(); ++j) {
          LayerMask forced(g.num_layers(), 0);
          for (int k = i; k <= j; ++k) forced[k] = 1;
          ASSERT_NEAR(runs.ForcedRunMs(i, j), model.BestByMinCut(uploaded, &forced, nullptr).latency_ms, 1e-9)
              << "shape " << int(shape) << " seed " << seed << " run " << i << ".." << j;
        }
      }
    }
  }
  EXPECT_EQ(fast, 36);  // every one of these graphs decomposes
  EXPECT_EQ(non_chain, 36);
}

// One RunLatency updated through a sequence of uploaded sets (as a planner
// uses it, with per-block caches kept for unchanged blocks) answers as a
// fresh minimum cut for each.
TEST(Latency, UpdatedRunLatencyMatchesMinCut) {
  for (uint32_t seed = 1; seed <= 4; ++seed) {
    const Shape shape = seed % 2 ? Shape::kModules : Shape::kAttention;
    const CostGraph g = RandomCostGraph(seed % 2 ? 30 : 36, shape, seed + 900);
    const LatencyModel model(g);
    RunLatency runs(model);
    std::mt19937 rng(seed);
    LayerMask uploaded(g.num_layers(), 0);
    for (int step = 0; step < 8; ++step) {
      // Grow the set by a few layers, sometimes in one block only.
      for (int t = 0; t < 3; ++t) uploaded[rng() % g.num_layers()] = 1;
      runs.Update(uploaded);
      ASSERT_NEAR(runs.base_ms(), model.BestByMinCut(uploaded, nullptr, nullptr).latency_ms, 1e-9);
      std::vector<double> row(g.num_layers());
      for (int i = 0; i < g.num_layers(); ++i) {
        runs.ForcedRunRowMs(i, g.num_layers() - 1, row.data());
        for (int j = i; j < g.num_layers(); ++j) {
          LayerMask forced(g.num_layers(), 0);
          for (int k = i; k <= j; ++k) forced[k] = 1;
          const double want = model.BestByMinCut(uploaded, &forced, nullptr).latency_ms;
          ASSERT_NEAR(runs.ForcedRunMs(i, j), want, 1e-9) << "seed " << seed << " step " << step;
          ASSERT_NEAR(row[j - i], want, 1e-9) << "row, seed " << seed << " step " << step;
        }
      }
    }
  }
}

TEST(Latency, LocalIsSumOfClientTimes) {
  const CostGraph g = RandomCostGraph(12, Shape::kAny, 5);
  double sum = 0;
  for (const auto& l : g.layers()) sum += l.client_ms;
  EXPECT_NEAR(LatencyModel(g).LocalMs(), sum, 1e-9);
}

}  // namespace
}  // namespace ionn
