// Small valid models with weights, every common layer kind (a CNN's and a
// transformer's): the seeds of the ONNX mutation test
// (tests/onnx_fuzz_test.cc) and of the fuzz targets' corpora
// (fuzz/make_seeds.cc).
#pragma once

#include <random>
#include <string>

#include "ionn/graph.h"

namespace ionn::fuzz {

// A weight of `shape` with values uniform in [-0.5, 0.5).
inline Weight RandomWeight(const std::string& name, Shape shape, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-0.5f, 0.5f);
  Weight x{name, shape, std::vector<float>(ElementCount(shape))};
  for (float& v : x.data) v = u(rng);
  return x;
}

// input [1,3,8,8] -> conv 3x3 (4) -> BN -> ReLU -> Resize (linear, 2x) ->
// maxpool (stride 2) -> concat with a 1x1 conv branch -> global pool -> Gemm
// -> Softmax.
inline Graph SmallModel() {
  std::mt19937 rng(5);
  auto w = [&](const std::string& name, Shape s) { return RandomWeight(name, std::move(s), rng); };
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

// input [1,6,8] -> LayerNorm -> queries (MatMul by a constant) and keys
// (MatMul, Transpose) -> scores (MatMul of two computed tensors) -> Pow ->
// Softmax over the last axis -> a class token concatenated before it ->
// Gather of rows -> strided Slice -> ReduceMean over two axes -> Erf.
inline Graph SmallTransformerModel() {
  std::mt19937 rng(6);
  auto w = [&](const std::string& name, Shape s) { return RandomWeight(name, std::move(s), rng); };
  Graph g;
  g.name = "small_transformer";
  g.inputs = {{"tokens", {1, 6, 8}}};
  auto add = [&](const std::string& name, LayerKind kind, std::vector<std::string> in) -> Layer& {
    Layer l;
    l.name = name, l.kind = kind, l.inputs = std::move(in);
    g.layers.push_back(std::move(l));
    return g.layers.back();
  };
  Layer& norm = add("norm", LayerKind::kLayerNorm, {"tokens"});
  norm.attrs["axis"].ints = {2};
  norm.attrs["epsilon"].floats = {1e-5f};
  norm.weights = {w("scale", {8}), w("bias", {8})};
  add("q", LayerKind::kMatMul, {"norm"}).weights = {w("wq", {8, 8})};
  add("k", LayerKind::kMatMul, {"norm"}).weights = {w("wk", {8, 8})};
  add("kt", LayerKind::kTranspose, {"k"}).perm = {0, 2, 1};
  add("scores", LayerKind::kMatMul, {"q", "kt"});  // [1, 6, 6]
  add("cube", LayerKind::kPow, {"scores"}).attrs["exponent"].floats = {3};
  Layer& sm = add("attn", LayerKind::kSoftmax, {"cube"});
  sm.axis = 2;
  Layer& cat = add("cls", LayerKind::kConcatConstants, {"attn"});  // [1, 2, 6] before: [1, 8, 6]
  cat.attrs["axis"].ints = {1}, cat.attrs["pieces"].ints = {0, -1};
  cat.weights = {w("token", {1, 2, 6})};
  Layer& gather = add("rows", LayerKind::kGather, {"cls"});  // [1, 2, 2, 6]
  gather.attrs["axis"].ints = {1}, gather.attrs["indices"].ints = {0, 7, 3, 3};
  gather.attrs["indices_shape"].ints = {2, 2};
  Layer& slice = add("strided", LayerKind::kStridedSlice, {"rows"});  // [1, 1, 2, 3]
  slice.attrs["starts"].ints = {0, 1, 1, 5}, slice.attrs["steps"].ints = {1, 1, -1, -2};
  slice.attrs["counts"].ints = {1, 1, 2, 3};
  Layer& mean = add("mean", LayerKind::kReduceMean, {"strided"});
  mean.attrs["axes"].ints = {1, 3}, mean.attrs["keepdims"].ints = {1};
  add("erf", LayerKind::kErf, {"mean"});
  add("floor", LayerKind::kMax, {"erf"}).weights = {w("lo", {1, 1, 1, 3})};
  add("low", LayerKind::kMin, {"erf", "floor"});  // [1, 1, 2, 3]
  Layer& up = add("up", LayerKind::kConvTranspose, {"low"});  // [1, 2, 4, 6]
  up.attrs["kernel"].ints = {2, 2}, up.attrs["strides"].ints = {2, 2}, up.attrs["dilations"].ints = {1, 1};
  up.attrs["group"].ints = {1}, up.attrs["pads"].ints = {0, 0, 0, 0};
  up.weights = {w("up_w", {1, 2, 2, 2}), w("up_b", {2})};
  g.outputs = {"up", "attn"};  // two outputs
  (void)g.Finalize();  // valid by construction (tests check it)
  return g;
}

}  // namespace ionn::fuzz
