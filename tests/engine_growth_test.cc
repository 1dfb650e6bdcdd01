// An engine built from the architecture alone, grown layer by layer as
// partitions arrive, and prepared runs executed repeatedly.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "ionn/engine.h"
#include "ionn/npy.h"
#include "ionn/weight_codec.h"
#include "ionn/zoo.h"

namespace ionn {
namespace {

std::vector<int> AllLayers(const Graph& g) {
  std::vector<int> all(g.layers.size());
  for (size_t k = 0; k < all.size(); ++k) all[k] = static_cast<int>(k);
  return all;
}

// Kernels shared between engines (the server's layer store): an engine
// that adopts every kernel and fused kernel of another computes the same
// bits; one that adopts some layers and builds the others from weights
// runs those fusion groups unfused, equal up to rounding.
TEST(EngineGrowth, AdoptedKernelsComputeWhatTheirEngineComputes) {
  for (const char* name : {"resnet50", "alexnet"}) {
    SCOPED_TRACE(name);
    auto arch = BuildZooModel(name, 3, /*with_weights=*/false);
    auto full = BuildZooModel(name, 3);
    ASSERT_TRUE(arch.ok() && full.ok());
    auto owner = Engine::Create(*full).value();
    const TensorMap input = {{"data", SeededInput(full->inputs[0].shape, 5)}};
    const TensorMap want = owner->RunAll(input).value();
    const int n = static_cast<int>(full->layers.size());
    const auto groups = owner->FusionGroups();
    ASSERT_FALSE(groups.empty());

    auto all = Engine::Create(*arch).value();
    for (int k = 0; k < n; ++k) {
      if (!all->is_built(k)) {
        ASSERT_TRUE(all->AdoptLayer(k, owner->LayerKernel(k)).ok());
      }
    }
    EXPECT_FALSE(all->AdoptLayer(0, owner->LayerKernel(0)).ok());  // built already
    for (size_t g = 0; g < groups.size(); ++g) {
      ASSERT_TRUE(owner->FusedKernel(static_cast<int>(g)));
      EXPECT_FALSE(all->FusedKernel(static_cast<int>(g)));  // adopted members: not fused here
      ASSERT_TRUE(all->AdoptFused(static_cast<int>(g), owner->FusedKernel(static_cast<int>(g))).ok());
    }
    const TensorMap got = all->RunAll(input).value();
    for (const auto& [t, w] : want) EXPECT_EQ(got.at(t).data, w.data) << t;

    auto half = Engine::Create(*arch).value();
    EXPECT_FALSE(half->AdoptFused(0, owner->FusedKernel(0)).ok());  // members not built yet
    for (int k = 0; k < n; ++k) {
      if (half->is_built(k)) continue;
      Status s = k % 2 ? half->AdoptLayer(k, owner->LayerKernel(k)) : half->AddLayer(k, full->layers[k].weights);
      ASSERT_TRUE(s.ok()) << s.message();
    }
    const TensorMap mixed = half->RunAll(input).value();
    for (const auto& [t, w] : want) {
      double diff = 0, scale = 0;
      for (size_t i = 0; i < w.data.size(); ++i) {
        diff = std::max(diff, double(std::fabs(mixed.at(t).data[i] - w.data[i])));
        scale = std::max(scale, double(std::fabs(w.data[i])));
      }
      EXPECT_LE(diff, 1e-5 * scale) << t;
    }
  }
}

TEST(EngineGrowth, ArchitectureAloneGrowsIntoTheWholeModel) {
  for (const char* name : {"alexnet", "resnet50"}) {
    SCOPED_TRACE(name);
    auto arch = BuildZooModel(name, 3, /*with_weights=*/false);
    auto full = BuildZooModel(name, 3);
    ASSERT_TRUE(arch.ok() && full.ok());
    auto grown = Engine::Create(*arch);
    ASSERT_TRUE(grown.ok()) << grown.status().message();
    auto reference = Engine::Create(*full);
    ASSERT_TRUE(reference.ok());
    Engine& e = **grown;
    const int n = static_cast<int>(full->layers.size());
    int weightless = 0;
    for (const auto& l : full->layers) weightless += l.weights.empty();
    EXPECT_EQ(e.num_built(), weightless);  // only layers without weights are built at once

    const TensorMap input = {{"data", SeededInput(full->inputs[0].shape, 5)}};
    auto missing = e.RunAll(input);
    ASSERT_FALSE(missing.ok());
    EXPECT_NE(missing.status().message().find("is not built yet"), std::string::npos) << missing.status().message();

    // Partitions of seeded random sizes, in a shuffled order, so fusion
    // groups arrive split across partitions and out of order.
    std::vector<int> order = AllLayers(*full);
    std::shuffle(order.begin(), order.end(), std::mt19937(11));
    std::mt19937 rng(2);
    size_t next = 0;
    while (next < order.size()) {
      const size_t size = 1 + rng() % 40;
      for (size_t i = next; i < std::min(order.size(), next + size); ++i) {
        const int k = order[i];
        if (e.is_built(k)) continue;
        Status s = e.AddLayer(k, full->layers[k].weights);
        ASSERT_TRUE(s.ok()) << s.message();
        EXPECT_TRUE(e.is_built(k));
      }
      next += size;
    }
    EXPECT_EQ(e.num_built(), n);
    auto got = e.RunAll(input);
    auto want = (*reference)->RunAll(input);
    ASSERT_TRUE(got.ok() && want.ok()) << got.status().message();
    // Same kernels, fusions and layouts once every layer is here: bit-identical.
    EXPECT_EQ(got->at(full->outputs[0]).data, want->at(full->outputs[0]).data);
    Status again = e.AddLayer(0, full->layers[0].weights);
    EXPECT_FALSE(again.ok());
    EXPECT_NE(again.message().find("already built"), std::string::npos) << again.message();
  }
}

TEST(EngineGrowth, AddLayerRejectsWeightsThatDoNotMatchTheArchitecture) {
  auto arch = BuildZooModel("alexnet", 1, false);
  auto full = BuildZooModel("alexnet", 1);
  ASSERT_TRUE(arch.ok() && full.ok());
  auto e = Engine::Create(*arch);
  ASSERT_TRUE(e.ok());
  const int conv1 = full->FindLayer("conv1");
  std::vector<Weight> w = full->layers[conv1].weights;
  auto expect_error = [&](int layer, std::vector<Weight> weights, const std::string& part) {
    Status s = (*e)->AddLayer(layer, std::move(weights));
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.message().find(part), std::string::npos) << s.message();
    EXPECT_EQ(s.message().find('\n'), std::string::npos);
  };
  expect_error(-1, w, "out of range");
  expect_error(int(full->layers.size()), w, "out of range");
  expect_error(conv1, {w[0]}, "1 weights given, expected 2");
  auto wrong_shape = w;
  wrong_shape[0].shape[0] += 1;
  expect_error(conv1, wrong_shape, "has shape");
  auto short_data = w;
  short_data[1].data.pop_back();
  expect_error(conv1, short_data, "holds 95 values, its shape needs 96");
  auto renamed = w;
  renamed[0].name = "other";
  expect_error(conv1, renamed, "expected '" + w[0].name + "'");
  EXPECT_FALSE((*e)->is_built(conv1));
  EXPECT_TRUE((*e)->AddLayer(conv1, w).ok());
}

TEST(EngineGrowth, APreparedRunExecutesRepeatedlyAndFusesOnce) {
  auto g = BuildZooModel("resnet50", 2);
  ASSERT_TRUE(g.ok());
  auto e = Engine::Create(*g);
  ASSERT_TRUE(e.ok());
  const int first = g->FindLayer("res2a_branch1"), last = g->FindLayer("res2b");
  ASSERT_GE(first, 0);
  ASSERT_GT(last, first);
  std::vector<int> layers;
  for (int k = first; k <= last; ++k) layers.push_back(k);
  auto run = (*e)->Prepare(layers, {g->layers[last].name});
  ASSERT_TRUE(run.ok()) << run.status().message();
  EXPECT_LT((*run)->kernels(), int(layers.size()));  // conv + BN + scale (+ ReLU) fused
  ASSERT_EQ((*run)->given().size(), 1u);             // the block's input only
  const Shape& shape = (*run)->given_shapes()[0];
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    const TensorMap in = {{(*run)->given()[0], SeededInput(shape, seed)}};
    auto a = (*e)->Execute(**run, in);
    auto b = (*e)->Run(layers, in, {g->layers[last].name});
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a->at(g->layers[last].name).data, b->at(g->layers[last].name).data);
  }
  auto missing = (*e)->Execute(**run, {});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("neither given nor produced"), std::string::npos);
}

// Profiling reads the clock it is given: a clock that never moves gives 0 ms.
TEST(EngineClock, ProfilingTimesWithTheGivenClock) {
  auto g = BuildZooModel("alexnet", 1);
  ASSERT_TRUE(g.ok());
  ManualClock frozen(100);
  EngineOptions options;
  options.clock = &frozen;
  auto e = Engine::Create(*g, options);
  ASSERT_TRUE(e.ok());
  auto t = (*e)->ProfileLayers({{"data", SeededInput(g->inputs[0].shape, 1)}}, 0, 2);
  ASSERT_TRUE(t.ok());
  for (const auto& layer : *t) EXPECT_EQ(layer.max_ms, 0);
  frozen.SleepMs(2.5);
  EXPECT_DOUBLE_EQ(frozen.NowMs(), 102.5);
}

}  // namespace
}  // namespace ionn

namespace ionn {
namespace {

TEST(Npy, RoundTripAndStrictReading) {
  Tensor t{{1, 3, 2}, {1, 2, 3, 4, 5, -6.5f}};
  const std::string bytes = SerializeNpy(t);
  EXPECT_EQ(bytes.size() % 64, 24u);  // 64-byte aligned header, then 6 floats
  auto back = ParseNpy(bytes);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->shape, t.shape);
  EXPECT_EQ(back->data, t.data);
  Tensor one{{4}, {1, 2, 3, 4}};
  EXPECT_EQ(ParseNpy(SerializeNpy(one))->shape, (Shape{4}));
  auto expect_error = [](std::string b, const std::string& part) {
    auto r = ParseNpy(b);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find(part), std::string::npos) << r.status().message();
  };
  expect_error("hello", "not a .npy");
  expect_error(bytes.substr(0, bytes.size() - 1), "data bytes");
  std::string f8 = bytes;
  f8.replace(f8.find("<f4"), 3, "<f8");
  expect_error(f8, "dtype");
  std::string fortran = bytes;
  fortran.replace(fortran.find("False"), 5, "True ");
  expect_error(fortran, "Fortran");
  std::string huge = bytes;
  huge.replace(huge.find("(1, 3, 2)"), 9, "(99999999999)");
  expect_error(huge, "");
  std::string bad_shape = bytes;
  bad_shape.replace(bad_shape.find("(1, 3, 2)"), 9, "(1, x, 2)");
  expect_error(bad_shape, "tuple of integers");
}

// Progressive upload on the engine: every layer built provisionally from
// its high half (bfloat16), then replaced by its exact weights. While
// provisional the model computes what the decoded high halves compute
// (fusions waiting); once every layer is replaced, bit for bit what the
// engine of the exact model computes, fusions made. A run prepared before a
// replacement keeps the kernels it was prepared with.
TEST(EngineGrowth, ProvisionalLayersAreReplacedByTheirExactWeights) {
  for (const char* name : {"resnet50", "alexnet"}) {
    SCOPED_TRACE(name);
    auto arch = BuildZooModel(name, 3, /*with_weights=*/false);
    auto full = BuildZooModel(name, 3);
    ASSERT_TRUE(arch.ok() && full.ok());
    auto high = GraphAsDecoded(*full, UploadEncoding::kProgressive, UnitPhase::kHigh);
    ASSERT_TRUE(high.ok());
    EngineOptions unfused;
    unfused.fuse = false;
    const TensorMap input = {{"data", SeededInput(full->inputs[0].shape, 5)}};
    const std::string out = full->outputs[0];
    const TensorMap want_exact = Engine::Create(*full).value()->RunAll(input).value();
    const TensorMap want_high = Engine::Create(*high, unfused).value()->RunAll(input).value();

    auto e = Engine::Create(*arch).value();
    const int n = static_cast<int>(full->layers.size());
    for (int k = 0; k < n; ++k) {
      if (e->is_built(k)) continue;
      ASSERT_TRUE(e->AddLayer(k, high->layers[k].weights, /*provisional=*/true).ok());
      EXPECT_TRUE(e->is_provisional(k));
    }
    auto before = e->Prepare(AllLayers(*full), {out});
    ASSERT_TRUE(before.ok());
    const TensorMap got_high = e->RunAll(input).value();
    EXPECT_EQ(got_high.at(out).data, want_high.at(out).data);
    for (size_t g = 0; g < e->FusionGroups().size(); ++g) EXPECT_FALSE(e->FusedKernel(static_cast<int>(g)));

    for (int k = 0; k < n; ++k) {
      if (!e->is_provisional(k)) {
        EXPECT_FALSE(e->ReplaceLayer(k, full->layers[k].weights).ok());  // weightless: built final at creation
        continue;
      }
      ASSERT_TRUE(e->ReplaceLayer(k, full->layers[k].weights).ok());
      EXPECT_FALSE(e->is_provisional(k));
    }
    const int first_conv = 0;  // both models start with a convolution
    ASSERT_FALSE(full->layers[first_conv].weights.empty());
    Status twice = e->ReplaceLayer(first_conv, full->layers[first_conv].weights);
    EXPECT_FALSE(twice.ok());
    EXPECT_NE(twice.message().find("not built provisionally"), std::string::npos) << twice.message();
    const TensorMap got_exact = e->RunAll(input).value();
    EXPECT_EQ(got_exact.at(out).data, want_exact.at(out).data);
    const TensorMap still_high = e->Execute(**before, input).value();
    EXPECT_EQ(still_high.at(out).data, want_high.at(out).data);
  }
}

}  // namespace
}  // namespace ionn
