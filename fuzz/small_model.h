// A small valid model with weights, every common layer kind: the seed of
// the ONNX mutation test (tests/onnx_fuzz_test.cc) and of the fuzz
// targets' corpora (fuzz/make_seeds.cc).
#pragma once

#include <random>
#include <string>

#include "ionn/graph.h"

namespace ionn::fuzz {

// input [1,3,8,8] -> conv 3x3 (4) -> BN -> ReLU -> Resize (linear, 2x) ->
// maxpool (stride 2) -> concat with a 1x1 conv branch -> global pool -> Gemm
// -> Softmax.
inline Graph SmallModel() {
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
  Layer up;  // a kind with Layer::attrs
  up.name = "up", up.kind = LayerKind::kResize, up.inputs = {"relu"};
  up.attrs["mode"].text = "linear";
  up.attrs["coordinate_transformation_mode"].text = "half_pixel";
  up.attrs["nearest_mode"].text = "round_prefer_floor";
  up.attrs["scales"].floats = {2, 2};
  up.attrs["sizes"].ints = {16, 16};
  Layer pool;
  pool.name = "pool", pool.kind = LayerKind::kMaxPool, pool.inputs = {"up"};
  pool.kernel_h = pool.kernel_w = 3, pool.stride_h = pool.stride_w = 2;
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
  g.layers = {conv, bn, relu, up, pool, side, cat, gap, fc, sm};
  g.outputs = {"prob"};
  (void)g.Finalize();  // valid by construction (tests check it)
  return g;
}

}  // namespace ionn::fuzz
