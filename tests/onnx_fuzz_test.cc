// Seeded mutations of small valid ONNX files: import, engine creation and a
// run must each either succeed or return an error, never crash (CI also
// runs this under ASan and UBSan).
#include <gtest/gtest.h>

#include <cstdio>
#include <random>

#include "ionn/engine.h"
#include "ionn/onnx_io.h"

namespace ionn {
namespace {

// input [1,3,8,8] -> conv 3x3 (4) -> BN -> ReLU -> maxpool -> concat with a
// 1x1 conv branch -> global pool -> Gemm -> Softmax.
Graph SmallModel() {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-0.5f, 0.5f);
  auto w = [&](const std::string& name, Shape s) {
    Weight x{name, s, std::vector<float>(ElementCount(s))};
    for (float& v : x.data) v = u(rng);
    return x;
  };
  Graph g;
  g.name = "small";
  g.inputs = {{"data", {1, 3, 8, 8}}};
  Layer conv;
  conv.name = "conv", conv.kind = LayerKind::kConv, conv.inputs = {"data"}, conv.out_channels = 4;
  conv.kernel_h = conv.kernel_w = 3, conv.pad_top = conv.pad_left = conv.pad_bottom = conv.pad_right = 1;
  conv.weights = {w("cw", {4, 3, 3, 3}), w("cb", {4})};
  Layer bn;
  bn.name = "bn", bn.kind = LayerKind::kBatchNorm, bn.inputs = {"conv"};
  bn.weights = {w("g", {4}), w("b", {4}), w("m", {4}), {"v", {4}, {1, 2, 3, 4}}};
  Layer relu;
  relu.name = "relu", relu.kind = LayerKind::kRelu, relu.inputs = {"bn"};
  Layer pool;
  pool.name = "pool", pool.kind = LayerKind::kMaxPool, pool.inputs = {"relu"};
  pool.kernel_h = pool.kernel_w = 3, pool.stride_h = pool.stride_w = 1;
  pool.pad_top = pool.pad_left = pool.pad_bottom = pool.pad_right = 1;
  Layer side;
  side.name = "side", side.kind = LayerKind::kConv, side.inputs = {"data"}, side.out_channels = 2;
  side.weights = {w("sw", {2, 3, 1, 1})};
  Layer cat;
  cat.name = "cat", cat.kind = LayerKind::kConcat, cat.inputs = {"pool", "side"};
  Layer gap;
  gap.name = "gap", gap.kind = LayerKind::kGlobalAvgPool, gap.inputs = {"cat"};
  Layer fc;
  fc.name = "fc", fc.kind = LayerKind::kFc, fc.inputs = {"gap"}, fc.out_channels = 5;
  fc.weights = {w("fw", {5, 6}), w("fb", {5})};
  Layer sm;
  sm.name = "prob", sm.kind = LayerKind::kSoftmax, sm.inputs = {"fc"}, sm.softmax_coerce_2d = true;
  g.layers = {conv, bn, relu, pool, side, cat, gap, fc, sm};
  g.outputs = {"prob"};
  EXPECT_TRUE(g.Finalize().ok());
  return g;
}

TEST(OnnxFuzz, MutatedFilesNeverCrash) {
  const std::string good = SerializeOnnx(SmallModel()).value();
  std::mt19937 rng(2026);
  int parsed = 0, ran = 0;
  for (int trial = 0; trial < 5000; ++trial) {
    std::string bytes = good;
    switch (trial % 4) {
      case 0:  // flip a few bytes
      case 1:
        for (int k = 1 + rng() % 6; k > 0; --k) bytes[rng() % bytes.size()] ^= static_cast<char>(1 + rng() % 255);
        break;
      case 2:  // truncate
        bytes.resize(rng() % bytes.size());
        break;
      case 3:  // overwrite a run with random bytes
        for (size_t at = rng() % bytes.size(), k = 0; k < 8 && at + k < bytes.size(); ++k) {
          bytes[at + k] = static_cast<char>(rng());
        }
        break;
    }
    auto g = ParseOnnx(bytes);
    if (!g.ok()) {
      EXPECT_FALSE(g.status().message().empty());
      continue;
    }
    ++parsed;
    auto e = Engine::Create(*g);
    if (!e.ok()) continue;
    TensorMap in;
    for (const auto& i : g->inputs) in[i.name] = SeededInput(i.shape, 1);
    if ((*e)->RunAll(in).ok()) ++ran;
  }
  std::printf("parsed %d of 5000 mutations, ran %d\n", parsed, ran);
  // Most byte flips land in weight data and still parse and run.
  EXPECT_GT(parsed, 300);
  EXPECT_GT(ran, 300);
}

}  // namespace
}  // namespace ionn
