// The engine's second backend: XNNPACK's convolutions against a naive sum
// in double on seeded shapes (groups, depthwise, dilation, strides, uneven
// padding), each activation a convolution absorbs, a convolution XNNPACK
// refuses, whole zoo models on both backends, IONN_BACKEND, and refused names. The rest of the engine suite runs on
// XNNPACK too (ctest engine_xnnpack: IONN_BACKEND), concurrent runs
// (EngineReuse) included.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <random>
#include <string>

#include "ionn/engine.h"
#include "ionn/zoo.h"
#include "random_values.h"

namespace ionn {
namespace {

#define SKIP_WITHOUT_XNNPACK()                                                  \
  if (!EngineBackendAvailable(EngineBackend::kXnnpack)) {                       \
    GTEST_SKIP() << "this build has no XNNPACK (libxnnpack-dev not installed)"; \
  }

EngineOptions On(EngineBackend backend, int threads = 1, bool fuse = true) {
  EngineOptions o;
  o.threads = threads, o.fuse = fuse, o.backend = backend;
  return o;
}

// The kernels of a whole-model run on each backend.
int Kernels(const Engine& e, const std::string& backend) {
  std::vector<int> all(e.graph().layers.size());
  for (size_t k = 0; k < all.size(); ++k) all[k] = static_cast<int>(k);
  auto run = e.Prepare(all, e.graph().outputs);
  EXPECT_TRUE(run.ok()) << run.status().message();
  return run.ok() ? (*run)->backend_kernels(backend) : -1;
}

std::vector<float> NaiveConv(const Layer& l, const Shape& x, const std::vector<float>& in, const Shape& y) {
  const int64_t group = l.group, ic = x[1], oc = l.out_channels, icg = ic / group, H = x[2], W = x[3], OH = y[2],
                OW = y[3];
  std::vector<float> out(static_cast<size_t>(ElementCount(y)));
  for (int64_t n = 0; n < x[0]; ++n) {
    for (int64_t o = 0; o < oc; ++o) {
      const int64_t g = o / (oc / group);
      for (int64_t oh = 0; oh < OH; ++oh) {
        for (int64_t ow = 0; ow < OW; ++ow) {
          double acc = l.weights.size() > 1 ? l.weights[1].data[o] : 0.0;
          for (int64_t c = 0; c < icg; ++c) {
            for (int64_t i = 0; i < l.kernel_h; ++i) {
              for (int64_t j = 0; j < l.kernel_w; ++j) {
                const int64_t h = oh * l.stride_h - l.pad_top + i * l.dilation_h;
                const int64_t w = ow * l.stride_w - l.pad_left + j * l.dilation_w;
                if (h < 0 || h >= H || w < 0 || w >= W) continue;
                acc += double(in[(((n * ic) + g * icg + c) * H + h) * W + w]) *
                       l.weights[0].data[((o * icg + c) * l.kernel_h + i) * l.kernel_w + j];
              }
            }
          }
          out[((n * oc + o) * OH + oh) * OW + ow] = static_cast<float>(acc);
        }
      }
    }
  }
  return out;
}

TEST(XnnpackBackend, ConvolutionMatchesNaive) {
  SKIP_WITHOUT_XNNPACK();
  std::mt19937 rng(7);
  for (int trial = 0; trial < 24; ++trial) {
    // Dense, grouped, depthwise (multiplier 1 and 2), with dilation, strides
    // and uneven padding; a bias or none.
    const int kind = trial % 4;
    const int64_t ic = kind == 2 || kind == 3 ? 3 + rng() % 6 : 4 * (1 + rng() % 3);
    const int64_t group = kind == 0 ? 1 : kind == 1 ? 2 : ic;
    const int64_t oc = kind == 3 ? 2 * ic : kind == 2 ? ic : group * (1 + rng() % 4);
    Layer l;
    l.kind = LayerKind::kConv, l.name = "y", l.inputs = {"x"};
    l.out_channels = oc, l.group = group;
    l.kernel_h = 1 + rng() % 3, l.kernel_w = 1 + rng() % 5;
    l.stride_h = 1 + rng() % 2, l.stride_w = 1 + rng() % 2;
    l.dilation_h = 1 + (trial % 5 == 4), l.dilation_w = 1 + (trial % 7 == 6);
    l.pad_top = rng() % 2, l.pad_left = rng() % 3, l.pad_bottom = rng() % 2, l.pad_right = rng() % 2;
    l.weights = {
        {"w", {oc, ic / group, l.kernel_h, l.kernel_w}, Random(oc * (ic / group) * l.kernel_h * l.kernel_w, rng)}};
    if (trial % 3 != 0) l.weights.push_back({"b", {oc}, Random(oc, rng)});
    const Shape x = {1 + trial % 2, ic, 6 + static_cast<int64_t>(rng() % 6), 9 + static_cast<int64_t>(rng() % 7)};
    Graph g;
    g.inputs = {{"x", x}};
    g.layers = {l};
    g.outputs = {"y"};
    Status finalized = g.Finalize();
    ASSERT_TRUE(finalized.ok()) << trial << ": " << finalized.message();
    auto e = Engine::Create(g, On(EngineBackend::kXnnpack));
    ASSERT_TRUE(e.ok()) << e.status().message();
    EXPECT_EQ(Kernels(**e, "xnnpack"), 1) << "trial " << trial;
    const Tensor in{x, Random(ElementCount(x), rng)};
    auto out = (*e)->RunAll({{"x", in}});
    ASSERT_TRUE(out.ok()) << out.status().message();
    const Tensor& y = out->at("y");
    const std::vector<float> want = NaiveConv(g.layers[0], x, in.data, y.shape);
    ASSERT_EQ(y.data.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      ASSERT_NEAR(y.data[i], want[i], 1e-4 * (1 + std::fabs(want[i]))) << "trial " << trial << " at " << i;
    }
  }
}

// Each activation a convolution absorbs (ReLU and Clip as XNNPACK's clamp;
// sigmoid, hard swish and x * sigmoid(x) after it) against the layers run
// one by one on oneDNN.
TEST(XnnpackBackend, AbsorbedActivationsMatchUnfused) {
  SKIP_WITHOUT_XNNPACK();
  std::mt19937 rng(8);
  struct Case {
    const char* name;
    LayerKind act;
    bool gated;  // Mul(act, conv) after it: SiLU
  };
  for (const Case& c : {Case{"relu", LayerKind::kRelu, false}, Case{"clip", LayerKind::kClip, false},
                        Case{"sigmoid", LayerKind::kSigmoid, false}, Case{"hardswish", LayerKind::kHardSwish, false},
                        Case{"silu", LayerKind::kSigmoid, true}}) {
    for (int64_t group : {int64_t{1}, int64_t{6}}) {
      Graph g;
      g.inputs = {{"x", {1, 6, 9, 8}}};
      Layer conv;
      conv.name = "conv", conv.kind = LayerKind::kConv, conv.inputs = {"x"};
      conv.out_channels = 12, conv.group = group, conv.kernel_h = conv.kernel_w = 3;
      conv.pad_top = conv.pad_left = conv.pad_bottom = conv.pad_right = 1;
      conv.weights = {{"w", {12, 6 / group, 3, 3}, Random(12 * (6 / group) * 9, rng)}, {"b", {12}, Random(12, rng)}};
      Layer act;
      act.name = "act", act.kind = c.act, act.inputs = {"conv"};
      act.clip_min = -0.5f, act.clip_max = 0.75f;
      g.layers = {conv, act};
      if (c.gated) {
        Layer mul;
        mul.name = "mul", mul.kind = LayerKind::kMul, mul.inputs = {"act", "conv"};
        g.layers.push_back(mul);
      }
      g.outputs = {g.layers.back().name};
      ASSERT_TRUE(g.Finalize().ok()) << c.name;
      auto fused = Engine::Create(g, On(EngineBackend::kXnnpack));
      auto plain = Engine::Create(g, On(EngineBackend::kOneDnn, 1, false));
      ASSERT_TRUE(fused.ok() && plain.ok()) << c.name;
      ASSERT_EQ((*fused)->FusionGroups().size(), 1u) << c.name;
      EXPECT_EQ(Kernels(**fused, "xnnpack"), 1) << c.name;
      const TensorMap in = {{"x", SeededInput(g.inputs[0].shape, 4)}};
      auto a = (*fused)->RunAll(in);
      auto b = (*plain)->RunAll(in);
      ASSERT_TRUE(a.ok() && b.ok()) << c.name;
      const auto &got = a->begin()->second.data, &want = b->begin()->second.data;
      ASSERT_EQ(got.size(), want.size());
      for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_NEAR(got[i], want[i], 1e-5 * (1 + std::fabs(want[i]))) << c.name << " group " << group << " at " << i;
      }
    }
  }
}

// Every zoo model on each backend: outputs within 1e-4 of the largest, every
// convolution on XNNPACK when asked for, none under auto (oneDNN is faster
// on every convolution measured on x86-64: BENCHMARKS.md).
TEST(XnnpackBackend, ZooModelsAgreeAcrossBackends) {
  SKIP_WITHOUT_XNNPACK();
  const char* env = std::getenv("IONN_BACKEND");
  const std::string env_backend = env ? env : "";
  for (const auto& entry : ZooModels()) {
    auto g = BuildZooModel(entry.name, 3);
    ASSERT_TRUE(g.ok()) << g.status().message();
    auto xnn = Engine::Create(*g, On(EngineBackend::kXnnpack));
    auto one = Engine::Create(*g, On(EngineBackend::kOneDnn));
    ASSERT_TRUE(xnn.ok() && one.ok()) << entry.name;
    int convs = 0;
    for (const auto& l : g->layers) convs += l.kind == LayerKind::kConv;
    // A convolution and what folds into it run as one kernel.
    EXPECT_EQ(Kernels(**xnn, "xnnpack"), convs) << entry.name;
    EXPECT_EQ(Kernels(**one, "xnnpack"), 0) << entry.name;
    // An engine left at auto: oneDNN on x86-64, or what IONN_BACKEND says
    // (ctest engine_xnnpack: every convolution on XNNPACK).
    auto def = Engine::Create(*g);
    ASSERT_TRUE(def.ok());
#if defined(__x86_64__)
    if (env_backend.empty() || env_backend == "auto") {
      EXPECT_EQ(Kernels(**def, "xnnpack"), 0) << entry.name;
    }
#endif
    if (env_backend == "xnnpack") {
      EXPECT_EQ(Kernels(**def, "xnnpack"), convs) << entry.name;
    } else if (env_backend == "onednn") {
      EXPECT_EQ(Kernels(**def, "xnnpack"), 0) << entry.name;
    }
    const TensorMap in = {{g->inputs[0].name, SeededInput(g->inputs[0].shape, 5)}};
    auto a = (*xnn)->RunAll(in);
    auto b = (*one)->RunAll(in);
    ASSERT_TRUE(a.ok() && b.ok()) << entry.name;
    const auto &got = a->at(g->outputs[0]).data, &want = b->at(g->outputs[0]).data;
    ASSERT_EQ(got.size(), want.size());
    float largest = 0;
    for (float v : want) largest = std::max(largest, std::fabs(v));
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_NEAR(got[i], want[i], 1e-4 * largest) << entry.name << " at " << i;
    }
  }
}

// A convolution XNNPACK refuses (a Clip of an empty range: its clamp needs
// min < max) runs on oneDNN under --backend xnnpack, with the same result.
TEST(XnnpackBackend, RefusedConvolutionFallsBackToOneDnn) {
  SKIP_WITHOUT_XNNPACK();
  std::mt19937 rng(9);
  Graph g;
  g.inputs = {{"x", {1, 4, 6, 6}}};
  Layer conv;
  conv.name = "conv", conv.kind = LayerKind::kConv, conv.inputs = {"x"};
  conv.out_channels = 8, conv.kernel_h = conv.kernel_w = 3;
  conv.weights = {{"w", {8, 4, 3, 3}, Random(8 * 4 * 9, rng)}, {"b", {8}, Random(8, rng)}};
  Layer clip;
  clip.name = "clip", clip.kind = LayerKind::kClip, clip.inputs = {"conv"}, clip.clip_min = 0.25f,
  clip.clip_max = 0.25f;
  g.layers = {conv, clip};
  g.outputs = {"clip"};
  ASSERT_TRUE(g.Finalize().ok());
  auto xnn = Engine::Create(g, On(EngineBackend::kXnnpack));
  ASSERT_TRUE(xnn.ok()) << xnn.status().message();
  ASSERT_EQ((*xnn)->FusionGroups().size(), 1u);
  EXPECT_EQ(Kernels(**xnn, "xnnpack"), 0);
  EXPECT_EQ(Kernels(**xnn, "onednn"), 1);
  auto out = (*xnn)->RunAll({{"x", SeededInput(g.inputs[0].shape, 2)}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  for (float v : out->at("clip").data) ASSERT_EQ(v, 0.25f);
}

// IONN_BACKEND sets engines left at auto, never one given a backend.
TEST(EngineBackends, EnvironmentSetsAutoOnly) {
  SKIP_WITHOUT_XNNPACK();
  const char* saved = std::getenv("IONN_BACKEND");
  const std::string keep = saved ? saved : "";
  setenv("IONN_BACKEND", "xnnpack", 1);
  auto g = BuildZooModel("mobilenet", 1);
  auto left = Engine::Create(*g);
  auto given = Engine::Create(*g, On(EngineBackend::kOneDnn));
  if (saved) {
    setenv("IONN_BACKEND", keep.c_str(), 1);
  } else {
    unsetenv("IONN_BACKEND");
  }
  ASSERT_TRUE(left.ok() && given.ok());
  EXPECT_EQ((*left)->options().backend, EngineBackend::kXnnpack);
  EXPECT_EQ(Kernels(**left, "xnnpack"), 28);  // every convolution (the classifier is one)
  EXPECT_EQ((*given)->options().backend, EngineBackend::kOneDnn);
  EXPECT_EQ(Kernels(**given, "xnnpack"), 0);
}

TEST(EngineBackends, NamesAndRefusals) {
  for (EngineBackend b : {EngineBackend::kAuto, EngineBackend::kOneDnn, EngineBackend::kXnnpack}) {
    auto parsed = ParseEngineBackend(EngineBackendName(b));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, b);
  }
  auto bad = ParseEngineBackend("cuda");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("unknown backend 'cuda'"), std::string::npos) << bad.status().message();
  EXPECT_TRUE(EngineBackendAvailable(EngineBackend::kOneDnn));
  // IONN_BACKEND is read at Create and named when wrong.
  const char* saved = std::getenv("IONN_BACKEND");
  const std::string keep = saved ? saved : "";
  setenv("IONN_BACKEND", "fastest", 1);
  auto g = BuildZooModel("mobilenet", 1, false);
  auto e = Engine::Create(*g);
  if (saved) {
    setenv("IONN_BACKEND", keep.c_str(), 1);
  } else {
    unsetenv("IONN_BACKEND");
  }
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("IONN_BACKEND: unknown backend 'fastest'"), std::string::npos)
      << e.status().message();
}

}  // namespace
}  // namespace ionn
