// The kinds transformers and ConvNeXt need: ReduceMean/Sum/Max/Min over any
// axes, Pow with a constant exponent, LayerNormalization and MatMul with
// broadcasting, each against a naive loop in double on seeded shapes; the
// decomposed LayerNorm fused into one layer with the same output, and not
// fused where a part is read from outside; export and import round trips.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "ionn/engine.h"
#include "ionn/onnx_io.h"
#include "random_values.h"

namespace ionn {
namespace {

Result<std::map<std::string, Tensor>> RunGraph(Graph g, const std::map<std::string, std::vector<float>>& inputs) {
  IONN_RETURN_IF_ERROR(g.Finalize());
  IONN_ASSIGN_OR_RETURN(auto engine, Engine::Create(g));
  std::map<std::string, Tensor> in;
  for (const auto& [name, data] : inputs) in[name] = Tensor{*g.TensorShape(name), data};
  return engine->RunAll(in);
}

// Row-major strides of a shape.
std::vector<int64_t> Strides(const Shape& s) {
  std::vector<int64_t> st(s.size(), 1);
  for (size_t d = s.size(); d-- > 1;) st[d - 1] = st[d] * s[d];
  return st;
}

TEST(ReduceKernels, AnyAxesMatchNaiveLoops) {
  std::mt19937 rng(7);
  const LayerKind kinds[] = {LayerKind::kReduceMean, LayerKind::kReduceSum, LayerKind::kReduceMax,
                             LayerKind::kReduceMin};
  for (int trial = 0; trial < 60; ++trial) {
    const int rank = 1 + trial % 5;
    Shape x;
    for (int d = 0; d < rank; ++d) x.push_back(1 + static_cast<int64_t>(rng() % 5));
    std::vector<int64_t> axes;
    for (int d = 0; d < rank; ++d) {
      if (rng() % 2) axes.push_back(d);
    }
    if (trial % 7 == 0) axes = {2 % rank, rank - 1}, axes.erase(std::unique(axes.begin(), axes.end()), axes.end());
    std::sort(axes.begin(), axes.end());
    const bool keepdims = trial % 3 != 0;
    const LayerKind kind = kinds[trial % 4];
    const std::vector<float> in = Random(ElementCount(x), rng, -3, 3);
    Graph g;
    g.inputs = {{"x", x}};
    Layer l;
    l.name = "y", l.kind = kind, l.inputs = {"x"};
    l.attrs["axes"].ints = axes;
    l.attrs["keepdims"].ints = {keepdims};
    g.layers = {l};
    g.outputs = {"y"};
    const std::string what = std::string(LayerKindName(kind)) + " " + ShapeToString(x) + " axes " +
                             ShapeToString(axes) + (keepdims ? " keepdims" : "");
    auto out = RunGraph(g, {{"x", in}});
    ASSERT_TRUE(out.ok()) << what << ": " << out.status().message();
    // Naive: every output element from the input elements that map to it.
    std::vector<bool> reduced(rank, false);
    for (int64_t a : axes) reduced[a] = true;
    Shape kept;
    for (int d = 0; d < rank; ++d) kept.push_back(reduced[d] ? 1 : x[d]);
    const int64_t outputs = ElementCount(kept);
    std::vector<double> want(outputs, kind == LayerKind::kReduceMax ? -1e30 : kind == LayerKind::kReduceMin ? 1e30 : 0);
    const auto xs = Strides(x), ks = Strides(kept);
    int64_t count = 1;
    for (int64_t a : axes) count *= x[a];
    for (int64_t i = 0; i < ElementCount(x); ++i) {
      int64_t o = 0;
      for (int d = 0; d < rank; ++d) o += reduced[d] ? 0 : (i / xs[d] % x[d]) * ks[d];
      if (kind == LayerKind::kReduceMax) want[o] = std::max<double>(want[o], in[i]);
      else if (kind == LayerKind::kReduceMin) want[o] = std::min<double>(want[o], in[i]);
      else want[o] += in[i];
    }
    Shape expect_shape;
    for (int d = 0; d < rank; ++d) {
      if (!reduced[d]) expect_shape.push_back(x[d]);
      else if (keepdims) expect_shape.push_back(1);
    }
    const Tensor& y = out->at("y");
    EXPECT_EQ(y.shape, expect_shape) << what;
    ASSERT_EQ(static_cast<int64_t>(y.data.size()), outputs) << what;
    for (int64_t o = 0; o < outputs; ++o) {
      const double w = kind == LayerKind::kReduceMean ? want[o] / count : want[o];
      ASSERT_NEAR(y.data[o], w, 1e-5 * (1 + std::fabs(w))) << what << " at " << o;
    }
  }
}

TEST(ReduceKernels, NanPropagatesAndBadAttributesAreRefused) {
  Graph g;
  g.inputs = {{"x", {2, 3}}};
  Layer l;
  l.name = "y", l.kind = LayerKind::kReduceMax, l.inputs = {"x"};
  l.attrs["axes"].ints = {1};
  l.attrs["keepdims"].ints = {0};
  g.layers = {l};
  g.outputs = {"y"};
  auto out = RunGraph(g, {{"x", {1, NAN, 3, 4, 5, 6}}});
  ASSERT_TRUE(out.ok());
  EXPECT_TRUE(std::isnan(out->at("y").data[0]));
  EXPECT_EQ(out->at("y").data[1], 6);
  for (const std::vector<int64_t>& axes : {std::vector<int64_t>{1, 0}, {2}, {-1}, {0, 0}}) {
    Graph bad = g;
    bad.layers[0].attrs["axes"].ints = axes;
    EXPECT_NE(bad.Finalize().message().find("must ascend"), std::string::npos) << ShapeToString(axes);
  }
  Graph bad = g;
  bad.layers[0].attrs["keepdims"].ints = {2};
  EXPECT_NE(bad.Finalize().message().find("keepdims"), std::string::npos);
}

TEST(PowKernel, ConstantExponentsMatchPowf) {
  std::mt19937 rng(3);
  for (float e : {2.0f, 3.0f, 1.0f, 0.5f, -1.5f, 0.0f}) {
    const Shape x = {2, 3, 7};
    std::vector<float> in = Random(ElementCount(x), rng, e == 2 || e == 3 || e == 1 || e == 0 ? -3 : 0.1f, 3);
    Graph g;
    g.inputs = {{"x", x}};
    Layer l;
    l.name = "y", l.kind = LayerKind::kPow, l.inputs = {"x"};
    l.attrs["exponent"].floats = {e};
    g.layers = {l};
    g.outputs = {"y"};
    auto out = RunGraph(g, {{"x", in}});
    ASSERT_TRUE(out.ok()) << e;
    for (size_t i = 0; i < in.size(); ++i) {
      const double want = std::pow(static_cast<double>(in[i]), e);
      ASSERT_NEAR(out->at("y").data[i], want, 1e-5 * (1 + std::fabs(want))) << in[i] << "^" << e;
    }
    Graph bad = g;
    bad.layers[0].attrs["exponent"].floats = {NAN};
    EXPECT_NE(bad.Finalize().message().find("exponent"), std::string::npos);
  }
}

TEST(LayerNormKernel, MatchesTheFormulaOverAnyTrailingAxes) {
  std::mt19937 rng(11);
  for (const auto& [x, axis] : std::vector<std::pair<Shape, int64_t>>{
           {{2, 5}, 1}, {{1, 4, 4, 96}, 3}, {{2, 3, 4, 5}, 1}, {{3, 7}, 0}, {{1, 197, 64}, 2}}) {
    for (bool bias : {true, false}) {
      const Shape normalized(x.begin() + axis, x.end());
      const int64_t n = ElementCount(normalized), rows = ElementCount(x) / n;
      Graph g;
      g.inputs = {{"x", x}};
      Layer l;
      l.name = "y", l.kind = LayerKind::kLayerNorm, l.inputs = {"x"};
      l.attrs["axis"].ints = {axis};
      l.attrs["epsilon"].floats = {1e-3f};
      l.weights.push_back({"scale", normalized, Random(n, rng, 0.5f, 1.5f)});
      if (bias) l.weights.push_back({"B", normalized, Random(n, rng)});
      g.layers = {l};
      g.outputs = {"y"};
      const std::vector<float> in = Random(ElementCount(x), rng, -2, 5);
      auto out = RunGraph(g, {{"x", in}});
      ASSERT_TRUE(out.ok()) << out.status().message();
      for (int64_t r = 0; r < rows; ++r) {
        double mean = 0, var = 0;
        for (int64_t i = 0; i < n; ++i) mean += in[r * n + i] / static_cast<double>(n);
        for (int64_t i = 0; i < n; ++i) var += std::pow(in[r * n + i] - mean, 2) / static_cast<double>(n);
        for (int64_t i = 0; i < n; ++i) {
          const double want = (in[r * n + i] - mean) / std::sqrt(var + 1e-3) * l.weights[0].data[i] +
                              (bias ? l.weights[1].data[i] : 0.0);
          ASSERT_NEAR(out->at("y").data[r * n + i], want, 1e-5 * (1 + std::fabs(want))) << ShapeToString(x);
        }
      }
      Graph bad = g;
      bad.layers[0].attrs["axis"].ints = {static_cast<int64_t>(x.size())};
      EXPECT_NE(bad.Finalize().message().find("axis"), std::string::npos);
      bad = g;
      bad.layers[0].weights[0].shape = {n + 1};
      bad.layers[0].weights[0].data.push_back(0);
      EXPECT_NE(bad.Finalize().message().find("expected"), std::string::npos);
    }
  }
}

TEST(MatMulKernel, BroadcastingShapesMatchNaive) {
  std::mt19937 rng(5);
  struct Case {
    Shape a, b;
    bool constant;
  };
  const std::vector<Case> cases = {
      {{3, 4}, {4, 5}, false},         {{2, 3, 4}, {4, 5}, true},       {{2, 3, 4}, {2, 4, 5}, false},
      {{1, 56, 56, 96}, {96, 8}, true}, {{2, 1, 3, 4}, {1, 5, 4, 2}, false}, {{4}, {4, 3}, true},
      {{2, 3, 4}, {4}, false},          {{4}, {4}, false},               {{3, 2, 4}, {1, 4, 6}, true},
      {{1, 12, 7, 16}, {1, 12, 16, 7}, false},
  };
  for (const Case& c : cases) {
    Shape out;
    int64_t m, k, n;
    ASSERT_TRUE(MatMulShapes(c.a, c.b, &out, &m, &k, &n).ok());
    Graph g;
    g.inputs = {{"a", c.a}};
    Layer l;
    l.name = "y", l.kind = LayerKind::kMatMul, l.inputs = {"a"};
    const std::vector<float> av = Random(ElementCount(c.a), rng), bv = Random(ElementCount(c.b), rng);
    std::map<std::string, std::vector<float>> inputs = {{"a", av}};
    if (c.constant) {
      l.weights.push_back({"B", c.b, bv});
    } else {
      g.inputs.push_back({"b", c.b});
      l.inputs.push_back("b");
      inputs["b"] = bv;
    }
    g.layers = {l};
    g.outputs = {"y"};
    const std::string what = ShapeToString(c.a) + " x " + ShapeToString(c.b);
    auto y = RunGraph(g, inputs);
    ASSERT_TRUE(y.ok()) << what << ": " << y.status().message();
    ASSERT_EQ(y->at("y").shape, out) << what;
    // Naive: numpy's rules with 1-D operands promoted, batch axes broadcast.
    const Shape a2 = c.a.size() == 1 ? Shape{1, c.a[0]} : c.a, b2 = c.b.size() == 1 ? Shape{c.b[0], 1} : c.b;
    const size_t batch = std::max(a2.size(), b2.size()) - 2;
    Shape dims(batch);
    int64_t matrices = 1;
    for (size_t i = 0; i < batch; ++i) {
      const size_t e = batch - i;
      const int64_t x = e + 2 > a2.size() ? 1 : a2[a2.size() - 2 - e], z = e + 2 > b2.size() ? 1 : b2[b2.size() - 2 - e];
      dims[i] = std::max(x, z);
      matrices *= dims[i];
    }
    for (int64_t o = 0; o < matrices; ++o) {
      int64_t at_a = 0, at_b = 0, sa = 1, sb = 1, rest = o;
      for (size_t i = batch; i-- > 0;) {
        const size_t e = batch - i;
        const int64_t x = e + 2 > a2.size() ? 1 : a2[a2.size() - 2 - e], z = e + 2 > b2.size() ? 1 : b2[b2.size() - 2 - e];
        const int64_t coord = rest % dims[i];
        rest /= dims[i];
        if (x != 1) at_a += coord * sa;
        if (z != 1) at_b += coord * sb;
        sa *= x, sb *= z;
      }
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
          double s = 0;
          for (int64_t p = 0; p < k; ++p) s += double(av[at_a * m * k + i * k + p]) * bv[at_b * k * n + p * n + j];
          ASSERT_NEAR(y->at("y").data[(o * m + i) * n + j], s, 1e-4 * (1 + std::fabs(s))) << what;
        }
    }
  }
  Shape out;
  int64_t m, k, n;
  EXPECT_NE(MatMulShapes({2, 3}, {4, 5}, &out, &m, &k, &n).message().find("inner sizes differ"), std::string::npos);
  EXPECT_NE(MatMulShapes({2, 3, 4}, {3, 4, 5}, &out, &m, &k, &n).message().find("do not broadcast"), std::string::npos);
}

// x -> LayerNorm as ReduceMean, Sub, Pow (or Mul), ReduceMean, Add eps,
// Sqrt, Div [, Mul scale [, Add bias]]: the last layer named "y".
Graph DecomposedLayerNorm(const Shape& x, int64_t axis, bool pow, int affine, std::mt19937& rng) {
  Graph g;
  g.inputs = {{"x", x}};
  std::vector<int64_t> axes;
  for (int64_t d = axis; d < static_cast<int64_t>(x.size()); ++d) axes.push_back(d);
  auto add = [&](const std::string& name, LayerKind kind, std::vector<std::string> in) -> Layer& {
    Layer l;
    l.name = name, l.kind = kind, l.inputs = std::move(in);
    g.layers.push_back(std::move(l));
    return g.layers.back();
  };
  auto mean = [&](Layer& l) { l.attrs["axes"].ints = axes, l.attrs["keepdims"].ints = {1}; };
  mean(add("mean", LayerKind::kReduceMean, {"x"}));
  add("d", LayerKind::kSub, {"x", "mean"});
  if (pow) {
    add("sq", LayerKind::kPow, {"d"}).attrs["exponent"].floats = {2};
  } else {
    add("sq", LayerKind::kMul, {"d", "d"});
  }
  mean(add("var", LayerKind::kReduceMean, {"sq"}));
  add("ve", LayerKind::kAdd, {"var"}).weights = {{"eps", {}, {1e-5f}}};
  add("std", LayerKind::kSqrt, {"ve"});
  add(affine ? "n" : "y", LayerKind::kDiv, {"d", "std"});
  const Shape last = {x.back()};
  if (affine >= 1) add(affine == 2 ? "s" : "y", LayerKind::kMul, {"n"}).weights = {{"g", last, Random(x.back(), rng, 0.5f, 1.5f)}};
  if (affine == 2) add("y", LayerKind::kAdd, {"s"}).weights = {{"b", last, Random(x.back(), rng)}};
  g.outputs = {"y"};
  return g;
}

TEST(FuseLayerNorm, TheDecomposedPatternBecomesOneLayerWithTheSameOutput) {
  std::mt19937 rng(17);
  for (bool pow : {true, false}) {
    for (int affine = 0; affine <= 2; ++affine) {
      for (const auto& [x, axis] : std::vector<std::pair<Shape, int64_t>>{{{1, 6, 6, 24}, 3}, {{2, 5, 8}, 1}}) {
        if (axis != static_cast<int64_t>(x.size()) - 1 && affine) continue;  // the affine constants here are [C]
        Graph g = DecomposedLayerNorm(x, axis, pow, affine, rng);
        ASSERT_TRUE(g.Finalize().ok());
        const std::vector<float> in = Random(ElementCount(x), rng, -2, 4);
        auto before = RunGraph(g, {{"x", in}});
        ASSERT_TRUE(before.ok());
        Graph fused = g;
        ASSERT_EQ(FuseLayerNorm(&fused), 1);
        ASSERT_EQ(fused.layers.size(), 1u);
        EXPECT_EQ(fused.layers[0].kind, LayerKind::kLayerNorm);
        EXPECT_EQ(fused.layers[0].name, "y");
        EXPECT_EQ(fused.layers[0].weights.size(), affine == 2 ? 2u : 1u);
        auto after = RunGraph(fused, {{"x", in}});
        ASSERT_TRUE(after.ok()) << after.status().message();
        for (size_t i = 0; i < in.size(); ++i) {
          ASSERT_NEAR(after->at("y").data[i], before->at("y").data[i], 1e-5) << i;
        }
        // Through ONNX: export writes the parts at opset 11, import fuses them.
        auto bytes = SerializeOnnx(fused);
        ASSERT_TRUE(bytes.ok()) << bytes.status().message();
        auto back = ParseOnnx(*bytes);
        ASSERT_TRUE(back.ok()) << back.status().message();
        ASSERT_EQ(back->layers.size(), 1u);
        EXPECT_EQ(back->layers[0].kind, LayerKind::kLayerNorm);
        EXPECT_EQ(back->layers[0].attrs, fused.layers[0].attrs);
      }
    }
  }
}

TEST(FuseLayerNorm, LeavesPatternsWhosePartsAreReadElsewhere) {
  std::mt19937 rng(19);
  const Shape x = {1, 4, 8};
  Graph g = DecomposedLayerNorm(x, 2, true, 2, rng);
  g.outputs.push_back("var");  // the variance is wanted too
  ASSERT_TRUE(g.Finalize().ok());
  EXPECT_EQ(FuseLayerNorm(&g), 0);
  Graph other = DecomposedLayerNorm(x, 2, true, 2, rng);
  other.layers[0].attrs["axes"].ints = {1, 2};  // the mean over other axes than the variance
  other.layers[3].attrs["axes"].ints = {2};
  ASSERT_TRUE(other.Finalize().ok());
  EXPECT_EQ(FuseLayerNorm(&other), 0);
  Graph eps = DecomposedLayerNorm(x, 2, true, 0, rng);
  eps.layers[4].weights[0].data = {-1};  // a negative epsilon is no LayerNorm's
  ASSERT_TRUE(eps.Finalize().ok());
  EXPECT_EQ(FuseLayerNorm(&eps), 0);
  Graph wide = DecomposedLayerNorm(x, 2, true, 0, rng);
  wide.layers[4].weights[0].shape = {1, 1, 1, 1};  // an epsilon of rank 4 makes the output [1, 1, 4, 8]
  ASSERT_TRUE(wide.Finalize().ok());
  EXPECT_EQ(wide.layers.back().output_shape, (Shape{1, 1, 4, 8}));
  EXPECT_EQ(FuseLayerNorm(&wide), 0);
  Graph two = DecomposedLayerNorm(x, 2, false, 2, rng);  // two patterns, one after the other
  Graph second = DecomposedLayerNorm(x, 2, true, 1, rng);
  for (Layer& l : second.layers) {
    l.name += "2";
    for (std::string& in : l.inputs) in = in == "x" ? "y" : in + "2";
    two.layers.push_back(l);
  }
  two.outputs = {"y2"};
  ASSERT_TRUE(two.Finalize().ok());
  EXPECT_EQ(FuseLayerNorm(&two), 2);
  ASSERT_EQ(two.layers.size(), 2u);
  EXPECT_TRUE(two.Finalize().ok());
}

TEST(TransformerKinds, ExportThenImport) {
  std::mt19937 rng(23);
  Graph g;
  g.inputs = {{"x", {1, 6, 8}}, {"k", {1, 8, 6}}};
  auto add = [&](const std::string& name, LayerKind kind, std::vector<std::string> in) -> Layer& {
    Layer l;
    l.name = name, l.kind = kind, l.inputs = std::move(in);
    g.layers.push_back(std::move(l));
    return g.layers.back();
  };
  add("lin", LayerKind::kMatMul, {"x"}).weights = {{"w", {8, 8}, Random(64, rng)}};
  add("att", LayerKind::kMatMul, {"lin", "k"});
  add("p", LayerKind::kPow, {"att"}).attrs["exponent"].floats = {3};
  Layer& c = add("c", LayerKind::kConcatConstants, {"p"});  // [1, 6, 6] after [1, 2, 6]: [1, 8, 6]
  c.attrs["axis"].ints = {1}, c.attrs["pieces"].ints = {-1, 0};
  c.weights = {{"token", {1, 2, 6}, Random(12, rng)}};
  Layer& gather = add("g", LayerKind::kGather, {"c"});
  gather.attrs["axis"].ints = {1}, gather.attrs["indices"].ints = {0, 7, 3, 3}, gather.attrs["indices_shape"].ints = {2, 2};
  Layer& st = add("st", LayerKind::kStridedSlice, {"g"});  // [1, 2, 2, 6] -> [1, 1, 2, 3]
  st.attrs["starts"].ints = {0, 1, 1, 5}, st.attrs["steps"].ints = {1, 1, -1, -2}, st.attrs["counts"].ints = {1, 1, 2, 3};
  Layer& s = add("s", LayerKind::kReduceSum, {"st"});
  s.attrs["axes"].ints = {0, 2}, s.attrs["keepdims"].ints = {0};
  g.outputs = {"s"};
  ASSERT_TRUE(g.Finalize().ok());
  auto bytes = SerializeOnnx(g);
  ASSERT_TRUE(bytes.ok()) << bytes.status().message();
  auto back = ParseOnnx(*bytes);
  ASSERT_TRUE(back.ok()) << back.status().message();
  ASSERT_EQ(back->layers.size(), g.layers.size());
  for (size_t k = 0; k < g.layers.size(); ++k) {
    EXPECT_EQ(back->layers[k].kind, g.layers[k].kind) << k;
    EXPECT_EQ(back->layers[k].attrs, g.layers[k].attrs) << k;
    EXPECT_EQ(back->layers[k].output_shape, g.layers[k].output_shape) << k;
  }
  const std::vector<float> x = Random(48, rng), keys = Random(48, rng);
  auto ours = RunGraph(g, {{"x", x}, {"k", keys}});
  auto theirs = RunGraph(*back, {{"x", x}, {"k", keys}});
  ASSERT_TRUE(ours.ok() && theirs.ok());
  EXPECT_EQ(ours->at("s").data, theirs->at("s").data);
  Graph bad = g;
  bad.layers[5].attrs["counts"].ints = {1, 1, 3, 3};  // the third index would be -1
  EXPECT_NE(bad.Finalize().message().find("do not fit"), std::string::npos);
  bad = g;
  bad.layers[4].attrs["indices"].ints = {0, 8, 3, 3};
  EXPECT_NE(bad.Finalize().message().find("out of range"), std::string::npos);
  Graph scalar;
  scalar.inputs = {{"x", {}}};
  Layer empty_slice;
  empty_slice.name = "y", empty_slice.kind = LayerKind::kStridedSlice, empty_slice.inputs = {"x"};
  empty_slice.attrs["starts"].ints = {}, empty_slice.attrs["steps"].ints = {}, empty_slice.attrs["counts"].ints = {};
  scalar.layers = {empty_slice};
  scalar.outputs = {"y"};
  EXPECT_NE(scalar.Finalize().message().find("1 or more axes"), std::string::npos);
  bad = g;
  bad.layers[3].attrs["pieces"].ints = {0, 0};
  EXPECT_NE(bad.Finalize().message().find("each input and weight once"), std::string::npos);
}

// Transpose of any rank (Swin's and MaxViT's window partitions are 6-D),
// sizes of 1 among them, against the index formula.
TEST(TransposeKernel, AnyRankAndPermutationMatchesTheFormula) {
  std::mt19937 rng(21);
  for (int trial = 0; trial < 200; ++trial) {
    const int rank = 1 + trial % 6;
    Shape x;
    for (int d = 0; d < rank; ++d) x.push_back(1 + static_cast<int64_t>(rng() % 4));
    Shape perm(rank);
    for (int d = 0; d < rank; ++d) perm[d] = d;
    std::shuffle(perm.begin(), perm.end(), rng);
    Graph g;
    g.inputs = {{"x", x}};
    Layer l;
    l.name = "y", l.kind = LayerKind::kTranspose, l.inputs = {"x"}, l.perm = perm;
    g.layers = {l};
    g.outputs = {"y"};
    std::vector<float> in(ElementCount(x));
    for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<float>(i);
    auto out = RunGraph(g, {{"x", in}});
    const std::string what = ShapeToString(x) + " perm " + ShapeToString(perm);
    ASSERT_TRUE(out.ok()) << what << ": " << out.status().message();
    const Tensor& y = out->at("y");
    const std::vector<int64_t> in_strides = Strides(x), out_strides = Strides(y.shape);
    for (int64_t i = 0; i < ElementCount(y.shape); ++i) {
      int64_t at = 0;
      for (int d = 0; d < rank; ++d) at += (i / out_strides[d] % y.shape[d]) * in_strides[perm[d]];
      ASSERT_EQ(y.data[i], in[at]) << what << " at " << i;
    }
  }
}

// Softmax over the last axis (attention's; oneDNN's primitive) against the
// formula in double, large logits included; a NaN makes its row NaN and
// leaves the others alone.
TEST(SoftmaxKernel, LastAxisMatchesTheFormulaAndNanTakesItsRow) {
  std::mt19937 rng(4);
  for (const Shape& x : {Shape{1, 3, 197}, Shape{2, 12, 5, 49}, Shape{7}, Shape{4, 1000}}) {
    std::vector<float> in = Random(ElementCount(x), rng, -8, 8);
    in[0] = 80.0f;  // exp would overflow without the row's max taken off
    const int64_t dim = x.back(), rows = ElementCount(x) / dim;
    if (rows > 1) in[dim + 1] = NAN;  // row 1
    if (rows > 2) in[2 * dim + 1] = INFINITY;  // row 2: exp(inf - inf), NaN too
    Graph g;
    g.inputs = {{"x", x}};
    Layer l;
    l.name = "y", l.kind = LayerKind::kSoftmax, l.inputs = {"x"}, l.axis = static_cast<int>(x.size()) - 1;
    g.layers = {l};
    g.outputs = {"y"};
    auto out = RunGraph(g, {{"x", in}});
    ASSERT_TRUE(out.ok()) << out.status().message();
    const std::vector<float>& y = out->at("y").data;
    for (int64_t r = 0; r < rows; ++r) {
      const float* xr = in.data() + r * dim;
      if (rows > 1 && (r == 1 || r == 2)) {
        for (int64_t d = 0; d < dim; ++d) ASSERT_TRUE(std::isnan(y[r * dim + d])) << ShapeToString(x);
        continue;
      }
      double mx = xr[0], sum = 0;
      for (int64_t d = 1; d < dim; ++d) mx = std::max(mx, double(xr[d]));
      for (int64_t d = 0; d < dim; ++d) sum += std::exp(xr[d] - mx);
      for (int64_t d = 0; d < dim; ++d) {
        const double want = std::exp(xr[d] - mx) / sum;
        ASSERT_NEAR(y[r * dim + d], want, 1e-6 * (1 + want)) << ShapeToString(x) << " row " << r << " at " << d;
      }
    }
  }
}

}  // namespace
}  // namespace ionn
