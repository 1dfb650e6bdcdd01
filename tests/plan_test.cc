#include "ionn/plan.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "test_graphs.h"

namespace ionn {
namespace {

using testing::RandomCostGraph;
using testing::Shape;

CostGraph Fig2() {
  auto g = ReadCostGraphFile(std::string(IONN_SOURCE_DIR) + "/data/cases/paper_fig2.json");
  EXPECT_TRUE(g.ok()) << g.status().message();
  return std::move(g).value();
}

std::vector<std::vector<std::string>> Names(const CostGraph& g, const UploadPlan& plan) {
  std::vector<std::vector<std::string>> out;
  for (const auto& p : plan.partitions) {
    out.emplace_back();
    for (int k : p.layers) out.back().push_back(g.layer(k).name);
  }
  return out;
}

UploadPlan Plan(const CostGraph& g, const std::string& algorithm,
                Granularity granularity = Granularity::kLayer) {
  PlannerOptions o;
  o.algorithm = algorithm;
  o.granularity = granularity;
  auto plan = MakePlan(g, o);
  EXPECT_TRUE(plan.ok()) << plan.status().message();
  return std::move(plan).value();
}

using Parts = std::vector<std::vector<std::string>>;

TEST(PlanFig2, OriginalIsBThenACD) {
  const CostGraph g = Fig2();
  const UploadPlan p = Plan(g, "original");
  EXPECT_EQ(Names(g, p), (Parts{{"B"}, {"A", "C", "D"}}));
  EXPECT_DOUBLE_EQ(p.latency_local_ms, 52);
  EXPECT_DOUBLE_EQ(p.latency_optimal_ms, 21);
  EXPECT_DOUBLE_EQ(p.partitions[0].latency_ms, 43);  // paper Fig. 3(a): improvement 9
  EXPECT_DOUBLE_EQ(p.partitions[1].latency_ms, 21);
}

TEST(PlanFig2, EfficiencyIsBThenAThenCD) {
  const CostGraph g = Fig2();
  const UploadPlan p = Plan(g, "efficiency");
  EXPECT_EQ(Names(g, p), (Parts{{"B"}, {"A"}, {"C", "D"}}));
  EXPECT_DOUBLE_EQ(p.partitions[1].latency_ms, 37);  // Fig. 3(b): improvement 15 from 16 ms
}

TEST(PlanFig2, RecursiveEfficiencyIsBThenAThenCThenD) {
  const CostGraph g = Fig2();
  const UploadPlan p = Plan(g, "recursive-efficiency");
  EXPECT_EQ(Names(g, p), (Parts{{"B"}, {"A"}, {"C"}, {"D"}}));
  std::vector<double> latency, upload;
  for (const auto& part : p.partitions) latency.push_back(part.latency_ms), upload.push_back(part.upload_ms);
  EXPECT_EQ(latency, (std::vector<double>{43, 37, 29, 21}));  // Fig. 3(c)
  EXPECT_EQ(upload, (std::vector<double>{8, 8, 16, 8}));
}

TEST(PlanFig2, AllAtOnceIsOnePartition) {
  const CostGraph g = Fig2();
  EXPECT_EQ(Names(g, Plan(g, "all-at-once")), (Parts{{"A", "B", "C", "D"}}));
}

TEST(PlanFig2, EfficienciesOfThePaper) {
  // Section 3.2: after [B], eff[A] = 0.75 and eff[C,D] = 0.67; section 3.3: eff[C] = 0.5.
  const CostGraph g = Fig2();
  const LatencyModel m(g);
  const RunLatency runs(m, LayerMask{0, 1, 0, 0});
  EXPECT_DOUBLE_EQ(Efficiency(runs.base_ms() - runs.ForcedRunMs(0, 0), 8), 0.75);
  EXPECT_NEAR(Efficiency(runs.base_ms() - runs.ForcedRunMs(2, 3), 24), 2.0 / 3, 1e-12);
  EXPECT_DOUBLE_EQ(Efficiency(runs.base_ms() - runs.ForcedRunMs(2, 2), 16), 0.5);
}

TEST(Plan, RejectsUnknownAlgorithm) {
  PlannerOptions o;
  o.algorithm = "magic";
  auto plan = MakePlan(Fig2(), o);
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.status().message().find("magic"), std::string::npos);
}

// Every plan is a partition of all layers, latency never exceeds local and
// is optimal once the optimal set is uploaded.
TEST(PlanProperties, PartitionCoverageAndLatencyBounds) {
  int plans = 0;
  for (Shape shape : {Shape::kChain, Shape::kResidual, Shape::kBranches, Shape::kAny, Shape::kModules}) {
    for (uint32_t seed = 1; seed <= 12; ++seed) {
      const CostGraph g = RandomCostGraph(4 + seed % 11, shape, seed * 31 + int(shape));
      const LatencyModel model(g);
      const LayerMask optimal = model.Best(LayerMask(g.num_layers(), 1)).on_server;
      for (Granularity gran : {Granularity::kLayer, Granularity::kBlock}) {
        for (const auto& name : PlannerNames()) {
          const UploadPlan p = Plan(g, name, gran);
          std::vector<int> count(g.num_layers(), 0);
          LayerMask uploaded(g.num_layers(), 0);
          bool optimal_reached = false;
          for (const auto& part : p.partitions) {
            ASSERT_FALSE(part.layers.empty());
            for (int k : part.layers) ++count[k], uploaded[k] = 1;
            EXPECT_LE(part.latency_ms, p.latency_local_ms + 1e-9);
            bool has_optimal = true;
            for (int k = 0; k < g.num_layers(); ++k) has_optimal = has_optimal && (!optimal[k] || uploaded[k]);
            if (has_optimal) {
              EXPECT_NEAR(part.latency_ms, p.latency_optimal_ms, 1e-9) << name;
              optimal_reached = true;
            }
          }
          EXPECT_TRUE(optimal_reached);
          for (int c : count) EXPECT_EQ(c, 1) << name << " seed " << seed;
          ++plans;
        }
      }
    }
  }
  EXPECT_EQ(plans, 5 * 12 * 2 * static_cast<int>(PlannerNames().size()));
}

// Layers a server already holds (its layer store) form a free first
// partition; the rest is planned around them. Checked against the latency
// model recomputed from scratch for every prefix.
TEST(PlanProperties, HeldLayersAreUploadedAtTimeZero) {
  int plans = 0;
  for (Shape shape : {Shape::kChain, Shape::kResidual, Shape::kBranches, Shape::kModules}) {
    for (uint32_t seed = 1; seed <= 10; ++seed) {
      const CostGraph g = RandomCostGraph(5 + seed % 9, shape, seed * 17 + int(shape));
      const int n = g.num_layers();
      const LatencyModel model(g);
      const LayerMask optimal = model.Best(LayerMask(n, 1)).on_server;
      std::vector<LayerMask> helds = {LayerMask(n, 0), LayerMask(n, 1), optimal};
      LayerMask some(n, 0);
      for (int k = 0; k < n; ++k) some[k] = (seed * 7 + k * 3) % 4 == 0;
      helds.push_back(some);
      for (const auto& name : PlannerNames()) {
        PlannerOptions o;
        o.algorithm = name;
        for (const LayerMask& held : helds) {
          auto p = MakePlanWithHeld(g, held, o);
          ASSERT_TRUE(p.ok()) << p.status().message();
          const bool any = std::count(held.begin(), held.end(), 1) > 0;
          if (!any) {
            EXPECT_EQ(Names(g, *p), Names(g, Plan(g, name))) << name;
            ++plans;
            continue;
          }
          std::vector<int> first;
          for (int k = 0; k < n; ++k) {
            if (held[k]) first.push_back(k);
          }
          ASSERT_FALSE(p->partitions.empty());
          EXPECT_EQ(p->partitions[0].layers, first);
          EXPECT_EQ(p->partitions[0].upload_ms, 0.0);
          std::vector<int> count(n, 0);
          LayerMask uploaded(n, 0);
          double upload = 0, want_upload = 0;
          for (size_t i = 0; i < p->partitions.size(); ++i) {
            const Partition& part = p->partitions[i];
            ASSERT_FALSE(part.layers.empty());
            for (int k : part.layers) ++count[k], uploaded[k] = 1;
            if (i > 0) {
              for (int k : part.layers) EXPECT_FALSE(held[k]);
              EXPECT_NEAR(part.upload_ms, g.UploadMs(part.layers), 1e-9);
              want_upload += g.UploadMs(part.layers);
            }
            upload += part.upload_ms;
            EXPECT_NEAR(part.latency_ms, model.Best(uploaded).latency_ms, 1e-9) << name << " seed " << seed;
          }
          for (int c : count) EXPECT_EQ(c, 1) << name;
          EXPECT_NEAR(upload, want_upload, 1e-9);
          if (held == optimal || held == LayerMask(n, 1)) {
            EXPECT_NEAR(p->partitions[0].latency_ms, p->latency_optimal_ms, 1e-9) << name;
          }
          if (held == LayerMask(n, 1)) {
            EXPECT_EQ(p->partitions.size(), 1u);
          }
          ++plans;
        }
      }
    }
  }
  EXPECT_EQ(plans, 4 * 10 * 4 * static_cast<int>(PlannerNames().size()));
}

// The chosen candidate's efficiency is the maximum, recomputed by brute
// force with full solves over every run of optimal, not-uploaded layers.
TEST(PlanProperties, EfficiencyChoosesTheBestRun) {
  for (Shape shape : {Shape::kChain, Shape::kResidual, Shape::kAny, Shape::kModules}) {
    for (uint32_t seed = 1; seed <= 15; ++seed) {
      const CostGraph g = RandomCostGraph(3 + seed % 9, shape, seed * 97 + int(shape));
      const LatencyModel model(g);
      const int n = g.num_layers();
      const LayerMask optimal = model.Best(LayerMask(n, 1)).on_server;
      const UnitPartitions parts = PlanEfficiency(model, /*recursive=*/false);
      LayerMask uploaded(n, 0);
      for (size_t step = 0; step < parts.size(); ++step) {
        if (step > 0) {  // step 0 is the penalty-1 initial partition
          const double base = model.LatencyMs(uploaded);
          double best = -std::numeric_limits<double>::infinity();
          for (int i = 0; i < n; ++i) {
            for (int j = i; j < n; ++j) {
              bool run = true;
              for (int k = i; k <= j; ++k) run = run && optimal[k] && !uploaded[k];
              if (!run) continue;
              LayerMask forced(n, 0);
              std::vector<int> layers;
              for (int k = i; k <= j; ++k) forced[k] = 1, layers.push_back(k);
              best = std::max(best, Efficiency(base - model.LatencyMs(uploaded, &forced), g.UploadMs(layers)));
            }
          }
          const double chosen = Efficiency(base - [&] {
            LayerMask forced(n, 0);
            for (int k : parts[step]) forced[k] = 1;
            return model.LatencyMs(uploaded, &forced);
          }(), g.UploadMs(parts[step]));
          if (std::isinf(best)) {
            EXPECT_EQ(chosen, best);
          } else {
            EXPECT_NEAR(chosen, best, 1e-9 * std::max(1.0, std::fabs(best))) << "seed " << seed << " step " << step;
          }
        }
        for (int k : parts[step]) uploaded[k] = 1;
      }
    }
  }
}

// ionn's own planner starts from recursive-efficiency and only accepts swaps
// that raise the expected queries during upload; it keeps the same
// partitions, so it can only do better by that measure.
TEST(PlanProperties, ThroughputSearchNeverLowersExpectedQueries) {
  int better = 0, total = 0;
  for (Shape shape : {Shape::kChain, Shape::kResidual, Shape::kModules, Shape::kAny}) {
    for (uint32_t seed = 1; seed <= 20; ++seed) {
      const CostGraph g = RandomCostGraph(6 + seed % 14, shape, seed * 13 + int(shape));
      const UploadPlan rec = Plan(g, "recursive-efficiency");
      const UploadPlan search = Plan(g, "throughput-search");
      ASSERT_EQ(rec.partitions.size(), search.partitions.size());
      std::vector<std::vector<int>> a, b;
      for (const auto& p : rec.partitions) a.push_back(p.layers);
      for (const auto& p : search.partitions) b.push_back(p.layers);
      std::sort(a.begin(), a.end());
      std::sort(b.begin(), b.end());
      EXPECT_EQ(a, b) << "the same partitions, reordered";
      const double jr = PlanThroughput(g, rec), js = PlanThroughput(g, search);
      EXPECT_GE(js, jr - 1e-9 * std::max(1.0, jr)) << "seed " << seed;
      better += js > jr * (1 + 1e-9);
      ++total;
    }
  }
  std::printf("throughput-search beat recursive-efficiency's expected queries on %d of %d graphs\n", better, total);
}

TEST(PlanProperties, RecursivePartitionsHaveNoGainingSubRun) {
  const CostGraph g = RandomCostGraph(14, Shape::kChain, 4242);
  const LatencyModel model(g);
  const UnitPartitions parts = PlanEfficiency(model, /*recursive=*/true);
  LayerMask uploaded(g.num_layers(), 0);
  for (size_t step = 0; step < parts.size(); ++step) {
    const auto& part = parts[step];
    if (step > 0 && part.size() > 1) {
      const RunLatency runs(model, uploaded);
      for (int i = part.front(); i <= part.back(); ++i) {
        for (int j = i; j <= part.back(); ++j) {
          if (i == part.front() && j == part.back()) continue;
          std::vector<int> sub;
          for (int k = i; k <= j; ++k) sub.push_back(k);
          EXPECT_LE(Efficiency(runs.base_ms() - runs.ForcedRunMs(i, j), g.UploadMs(sub)), 0);
        }
      }
    }
    for (int k : part) uploaded[k] = 1;
  }
}


// A plan as data: what `ionn plan --format json` writes reads back as the
// same partitions with the same times; bad plans name their first problem.
TEST(PlanFromJson, RoundTripsAPlannersPlan) {
  const CostGraph g = Fig2();
  PlannerOptions o;
  o.algorithm = "recursive-efficiency";
  auto made = MakePlan(g, o);
  ASSERT_TRUE(made.ok()) << made.status().message();
  auto read = PlanFromJson(g, PlanToJson(g, *made));
  ASSERT_TRUE(read.ok()) << read.status().message();
  EXPECT_EQ(read->algorithm, "given");
  ASSERT_EQ(read->partitions.size(), made->partitions.size());
  for (size_t i = 0; i < made->partitions.size(); ++i) {
    EXPECT_EQ(read->partitions[i].layers, made->partitions[i].layers);
    EXPECT_DOUBLE_EQ(read->partitions[i].upload_ms, made->partitions[i].upload_ms);
    EXPECT_DOUBLE_EQ(read->partitions[i].latency_ms, made->partitions[i].latency_ms);
  }
  // The bare form: lists of names, in another order; once all four are up,
  // the latency is the optimal one (Fig. 2: 52 ms local, 21 ms optimal).
  auto bare = PlanFromJson(g, R"([["D"], ["C"], ["A"], ["B"]])");
  ASSERT_TRUE(bare.ok()) << bare.status().message();
  ASSERT_EQ(bare->partitions.size(), 4u);
  EXPECT_DOUBLE_EQ(bare->latency_local_ms, 52);
  EXPECT_DOUBLE_EQ(bare->partitions.back().latency_ms, 21);  // all uploaded: the optimal latency
}

TEST(PlanFromJson, NamesTheFirstProblem) {
  const CostGraph g = Fig2();
  const auto error = [&](const std::string& text) {
    auto p = PlanFromJson(g, text);
    return p.ok() ? std::string("accepted") : p.status().message();
  };
  EXPECT_EQ(error(R"([["A", "B"], ["B", "C", "D"]])"), "layer 'B' is in partition 0 and in partition 1");
  EXPECT_EQ(error(R"([["A", "A", "B", "C", "D"]])"), "layer 'A' is in partition 0 and in it again");
  EXPECT_EQ(error(R"([["A", "B", "C"]])"), "layer 'D' is in no partition");
  EXPECT_EQ(error(R"([["A", "B", "C", "D"], []])"), "partition 1 is empty");
  EXPECT_EQ(error(R"([["A", "B", "C", "X"]])"), "partition 0 names layer 'X', which the model does not have");
  EXPECT_EQ(error(R"([["A", 3]])"), "partition 0: 3 is not a layer name");
  EXPECT_EQ(error(R"({"partitions": 5})"), "\"partitions\" is not an array of partitions");
  EXPECT_EQ(error(R"({"plan": []})"), "no \"partitions\" (an array of partitions)");
  EXPECT_EQ(error(R"([{"upload_ms": 1}])"), "partition 0 has no \"layers\"");
  EXPECT_EQ(error("[]"), "no partitions");
  EXPECT_EQ(error("{"), "not JSON");
}

}  // namespace
}  // namespace ionn
