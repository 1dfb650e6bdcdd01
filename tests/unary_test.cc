// The element-wise functions of src/graph/ops/unary.cc: each kind against
// its formula in double on seeded values (negative, zero, positive), in any
// rank; and between convolutions, in the layouts the engine picks for them
// (NHWC, blocked), bit for bit the plain result.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>

#include "ionn/engine.h"
#include "ionn/onnx_io.h"
#include "layouts.h"
#include "random_values.h"

namespace ionn {
namespace {

struct UnaryCase {
  LayerKind kind;
  std::vector<std::pair<std::string, float>> attrs;
  std::function<double(double)> f;
};

std::vector<UnaryCase> Cases() {
  return {
      {LayerKind::kTanh, {}, [](double x) { return std::tanh(x); }},
      {LayerKind::kLeakyRelu, {{"alpha", 0.1f}}, [](double x) { return x < 0 ? 0.1f * x : x; }},
      {LayerKind::kElu, {{"alpha", 0.7f}}, [](double x) { return x < 0 ? 0.7f * (std::exp(x) - 1) : x; }},
      {LayerKind::kSelu,
       {{"alpha", 1.5f}, {"gamma", 1.25f}},
       [](double x) { return 1.25 * (x <= 0 ? 1.5 * (std::exp(x) - 1) : x); }},
      {LayerKind::kCelu,
       {{"alpha", 2.0f}},
       [](double x) { return std::isnan(x) ? x : std::max(0.0, x) + std::min(0.0, 2 * (std::exp(x / 2) - 1)); }},
      {LayerKind::kThresholdedRelu, {{"alpha", 0.25f}}, [](double x) { return x > 0.25 ? x : 0; }},
      {LayerKind::kExp, {}, [](double x) { return std::exp(x); }},
      {LayerKind::kLog, {}, [](double x) { return std::log(x); }},
      {LayerKind::kNeg, {}, [](double x) { return -x; }},
      {LayerKind::kAbs, {}, [](double x) { return std::fabs(x); }},
      {LayerKind::kSqrt, {}, [](double x) { return std::sqrt(x); }},
      {LayerKind::kReciprocal, {}, [](double x) { return 1 / x; }},
      {LayerKind::kErf, {}, [](double x) { return std::erf(x); }},
      {LayerKind::kSoftplus, {}, [](double x) { return std::log1p(std::exp(x)); }},
      {LayerKind::kSoftsign, {}, [](double x) { return x / (1 + std::fabs(x)); }},
      {LayerKind::kFloor, {}, [](double x) { return std::floor(x); }},
      {LayerKind::kCeil, {}, [](double x) { return std::ceil(x); }},
  };
}

Layer UnaryLayer(const UnaryCase& c) {
  Layer l;
  l.kind = c.kind;
  for (const auto& [name, v] : c.attrs) l.attrs[name].floats = {v};
  return l;
}

TEST(UnaryKernels, EachKindMatchesItsFormula) {
  std::mt19937 rng(91);
  for (const UnaryCase& c : Cases()) {
    for (const Shape& x : {Shape{37}, Shape{2, 3, 5, 7}, Shape{1, 2, 3, 4, 5}}) {
      const bool positive = c.kind == LayerKind::kLog || c.kind == LayerKind::kSqrt;  // defined there
      std::vector<float> in = Random(ElementCount(x), rng, positive ? 0.05f : -4, 4);
      if (!positive) in[0] = 0, in[1] = -0.0f, in[2] = 0.25f;  // the edges of the piecewise ones
      if (c.kind == LayerKind::kReciprocal) in[0] = 0.5f, in[1] = -2;
      Graph g;
      g.inputs = {{"x", x}};
      Layer l = UnaryLayer(c);
      l.name = "y", l.inputs = {"x"};
      g.layers = {l};
      g.outputs = {"y"};
      const std::string what = std::string(LayerKindName(c.kind)) + " " + ShapeToString(x);
      ASSERT_TRUE(g.Finalize().ok()) << what;
      auto e = Engine::Create(g);
      ASSERT_TRUE(e.ok()) << what << ": " << e.status().message();
      auto out = (*e)->RunAll({{"x", Tensor{x, in}}});
      ASSERT_TRUE(out.ok()) << what;
      const std::vector<float>& y = out->at("y").data;
      for (size_t i = 0; i < in.size(); ++i) {
        const double want = c.f(in[i]);
        ASSERT_NEAR(y[i], want, 1e-5 * (1 + std::fabs(want))) << what << " of " << in[i];
      }
    }
  }
}

// NaN stays NaN (ONNX's functions of NaN), and the infinities and overflows
// are IEEE's: exp(100) = inf, log(0) = -inf, 1/0 = inf, tanh(inf) = 1.
TEST(UnaryKernels, NanAndInfinitiesAsIeee) {
  for (const UnaryCase& c : Cases()) {
    const std::vector<float> in = {NAN, INFINITY, -INFINITY, 100, -100, 0};
    Graph g;
    g.inputs = {{"x", {static_cast<int64_t>(in.size())}}};
    Layer l = UnaryLayer(c);
    l.name = "y", l.inputs = {"x"};
    g.layers = {l};
    g.outputs = {"y"};
    ASSERT_TRUE(g.Finalize().ok());
    auto out = Engine::Create(g).value()->RunAll({{"x", Tensor{g.inputs[0].shape, in}}});
    ASSERT_TRUE(out.ok());
    const std::vector<float>& y = out->at("y").data;
    for (size_t i = 0; i < in.size(); ++i) {
      const double want = c.f(in[i]);
      const std::string what = std::string(LayerKindName(c.kind)) + " of " + std::to_string(in[i]);
      if (std::isnan(want)) {
        EXPECT_TRUE(std::isnan(y[i])) << what << ": " << y[i];
      } else if (std::isinf(want) || std::fabs(want) > 3.4e38) {
        EXPECT_EQ(y[i], want > 0 ? INFINITY : -INFINITY) << what;
      } else {
        EXPECT_NEAR(y[i], want, 1e-5 * (1 + std::fabs(want))) << what;
      }
    }
  }
}

TEST(UnaryKinds, ExportThenImportAndRefusals) {
  Graph g;
  g.inputs = {{"x", {1, 2, 3, 4}}};
  std::string last = "x";
  for (const UnaryCase& c : Cases()) {
    Layer l = UnaryLayer(c);
    l.name = std::string("u_") + LayerKindName(c.kind), l.inputs = {last};
    last = l.name;
    g.layers.push_back(l);
  }
  g.outputs = {last};
  ASSERT_TRUE(g.Finalize().ok());
  auto bytes = SerializeOnnx(g);
  ASSERT_TRUE(bytes.ok()) << bytes.status().message();
  auto back = ParseOnnx(*bytes);  // Celu needs opset 12: export writes it
  ASSERT_TRUE(back.ok()) << back.status().message();
  ASSERT_EQ(back->layers.size(), g.layers.size());
  for (size_t k = 0; k < g.layers.size(); ++k) {
    EXPECT_EQ(back->layers[k].kind, g.layers[k].kind);
    EXPECT_EQ(back->layers[k].attrs, g.layers[k].attrs) << g.layers[k].name;
  }
  Graph bad = g;
  for (Layer& l : bad.layers) {
    if (l.kind == LayerKind::kCelu) l.attrs["alpha"].floats = {0};
  }
  Status s = bad.Finalize();
  EXPECT_NE(s.message().find("Celu's alpha must not be 0"), std::string::npos) << s.message();
  bad = g;
  bad.layers[1].attrs["alpha"].floats = {NAN};  // LeakyRelu
  s = bad.Finalize();
  EXPECT_NE(s.message().find("alpha must be one finite value"), std::string::npos) << s.message();
  bad = g;
  bad.layers[0].attrs["alpha"].floats = {1};  // Tanh has none
  s = bad.Finalize();
  EXPECT_NE(s.message().find("unknown attribute 'alpha'"), std::string::npos) << s.message();
}

TEST(UnaryKernels, BetweenConvolutionsEveryLayoutGivesThePlainBits) {
  for (const UnaryCase& c : Cases()) {
    if (c.kind == LayerKind::kLog || c.kind == LayerKind::kSqrt) continue;  // NaN on negative values
    ExpectLayoutsAgreeBetweenConvolutions(UnaryLayer(c), 3, 20, 3, 92, -1, LayerKindName(c.kind));
  }
}

// PRelu's slope per channel, one for all, or any broadcast (expanded), in
// NCHW and between convolutions.
TEST(PReluKernel, EverySlopeShapeMatchesTheFormula) {
  std::mt19937 rng(93);
  const Shape x = {2, 3, 4, 5};
  for (const Shape& slope : {Shape{3, 1, 1}, Shape{1}, Shape{5}, Shape{4, 5}, Shape{1, 3, 1, 1}, Shape{2, 3, 4, 5}}) {
    Graph g;
    g.inputs = {{"x", x}};
    Layer l;
    l.kind = LayerKind::kPRelu, l.name = "y", l.inputs = {"x"};
    l.weights = {{"slope", slope, Random(ElementCount(slope), rng)}};
    g.layers = {l};
    g.outputs = {"y"};
    ASSERT_TRUE(g.Finalize().ok()) << ShapeToString(slope);
    const std::vector<float> in = Random(ElementCount(x), rng, -2, 2);
    auto out = Engine::Create(g).value()->RunAll({{"x", Tensor{x, in}}});
    ASSERT_TRUE(out.ok());
    for (int64_t e = 0; e < ElementCount(x); ++e) {
      // The slope element of x's element e: its index, from the right, per axis.
      int64_t rest = e, at = 0, stride = 1;
      for (size_t d = x.size(); d-- > 0;) {
        const int64_t i = rest % x[d];
        rest /= x[d];
        const size_t from_right = x.size() - 1 - d;
        if (from_right < slope.size()) {
          const int64_t s = slope[slope.size() - 1 - from_right];
          at += (s == 1 ? 0 : i) * stride;
          stride *= s;
        }
      }
      const float want = in[e] < 0 ? l.weights[0].data[at] * in[e] : in[e];
      ASSERT_FLOAT_EQ(out->at("y").data[e], want) << ShapeToString(slope) << " at " << e;
    }
  }
  Layer per_channel;  // between convolutions: NHWC, the plain bits
  per_channel.kind = LayerKind::kPRelu;
  per_channel.weights = {{"slope", {20, 1, 1}, Random(20, rng)}};
  ExpectLayoutsAgreeBetweenConvolutions(per_channel, 3, 20, 1, 4, 1, "PRelu per channel");
  Graph bad;
  bad.inputs = {{"x", x}};
  Layer l;
  l.kind = LayerKind::kPRelu, l.name = "y", l.inputs = {"x"};
  l.weights = {{"slope", {3}, {1, 2, 3}}};  // against W (5): does not broadcast
  bad.layers = {l};
  bad.outputs = {"y"};
  Status s = bad.Finalize();
  EXPECT_NE(s.message().find("does not broadcast"), std::string::npos) << s.message();
}

// InstanceNormalization against the mean and variance in double, ranks 3
// and 4, and its refusals.
TEST(InstanceNormKernel, MatchesTheFormula) {
  std::mt19937 rng(94);
  for (const Shape& x : {Shape{2, 3, 17}, Shape{1, 4, 5, 6}}) {
    const int64_t c = x[1], plane = ElementCount(x) / (x[0] * c);
    Graph g;
    g.inputs = {{"x", x}};
    Layer l;
    l.kind = LayerKind::kInstanceNorm, l.name = "y", l.inputs = {"x"};
    l.attrs["epsilon"].floats = {1e-3f};
    l.weights = {{"scale", {c}, Random(c, rng)}, {"B", {c}, Random(c, rng)}};
    g.layers = {l};
    g.outputs = {"y"};
    ASSERT_TRUE(g.Finalize().ok()) << ShapeToString(x);
    const std::vector<float> in = Random(ElementCount(x), rng, -3, 5);
    auto out = Engine::Create(g).value()->RunAll({{"x", Tensor{x, in}}});
    ASSERT_TRUE(out.ok());
    for (int64_t p = 0; p < x[0] * c; ++p) {
      double mean = 0, var = 0;
      for (int64_t i = 0; i < plane; ++i) mean += in[p * plane + i] / static_cast<double>(plane);
      for (int64_t i = 0; i < plane; ++i) var += std::pow(in[p * plane + i] - mean, 2) / static_cast<double>(plane);
      for (int64_t i = 0; i < plane; ++i) {
        const double want = l.weights[0].data[p % c] * (in[p * plane + i] - mean) / std::sqrt(var + 1e-3) +
                            l.weights[1].data[p % c];
        ASSERT_NEAR(out->at("y").data[p * plane + i], want, 1e-5 * (1 + std::fabs(want))) << ShapeToString(x);
      }
    }
    Graph bad = g;
    bad.layers[0].attrs["epsilon"].floats = {-1};
    EXPECT_NE(bad.Finalize().message().find("epsilon"), std::string::npos);
    bad = g;
    bad.layers[0].weights[1].shape = {c + 1};
    bad.layers[0].weights[1].data.push_back(0);
    EXPECT_NE(bad.Finalize().message().find("expected ["), std::string::npos);
  }
}

// Erf is our own rational fit (vectorized), not libm's: within 4e-7 of erf
// relative to the value over [-6, 6] and at tiny values, exact at 0 and
// +-1 at the infinities, NaN kept.
TEST(UnaryKernels, ErfWithinFourTenMillionthsOfLibm) {
  std::vector<float> in;
  for (int i = -60000; i <= 60000; ++i) in.push_back(static_cast<float>(i) * 1e-4f);
  for (float tiny : {1e-30f, 1e-20f, 1e-10f, 1e-5f}) in.push_back(tiny), in.push_back(-tiny);
  in.push_back(INFINITY), in.push_back(-INFINITY), in.push_back(NAN);
  const Shape x = {static_cast<int64_t>(in.size())};
  Graph g;
  g.inputs = {{"x", x}};
  Layer l;
  l.name = "y", l.kind = LayerKind::kErf, l.inputs = {"x"};
  g.layers = {l};
  g.outputs = {"y"};
  ASSERT_TRUE(g.Finalize().ok());
  auto e = Engine::Create(g);
  ASSERT_TRUE(e.ok()) << e.status().message();
  auto out = (*e)->RunAll({{"x", Tensor{x, in}}});
  ASSERT_TRUE(out.ok());
  const std::vector<float>& y = out->at("y").data;
  for (size_t i = 0; i < in.size(); ++i) {
    if (std::isnan(in[i])) {
      EXPECT_TRUE(std::isnan(y[i]));
      continue;
    }
    const double want = std::erf(static_cast<double>(in[i]));
    ASSERT_LE(std::fabs(y[i] - want), 4e-7 * std::fabs(want)) << "erf(" << in[i] << ") = " << y[i];
  }
}

}  // namespace
}  // namespace ionn
