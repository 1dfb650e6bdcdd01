// The element-wise functions of src/graph/ops/unary.cc: each kind against
// its formula in double on seeded values (negative, zero, positive), in any
// rank; and between convolutions, in the layouts the engine picks for them
// (NHWC, blocked), bit for bit the plain result.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>

#include "ionn/engine.h"
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
      {LayerKind::kCelu, {{"alpha", 2.0f}}, [](double x) { return std::max(0.0, x) + std::min(0.0, 2 * (std::exp(x / 2) - 1)); }},
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

TEST(UnaryKernels, BetweenConvolutionsEveryLayoutGivesThePlainBits) {
  std::mt19937 rng(92);
  for (const UnaryCase& c : Cases()) {
    if (c.kind == LayerKind::kLog || c.kind == LayerKind::kSqrt) continue;  // NaN on negative values
    Graph g;
    const Shape x = {1, 3, 9, 7};
    g.inputs = {{"x", x}};
    auto conv = [&](const std::string& name, const std::string& in, int ic, int oc) {
      Layer l;
      l.kind = LayerKind::kConv, l.out_channels = oc, l.kernel_h = l.kernel_w = 3, l.name = name, l.inputs = {in};
      l.pad_top = l.pad_left = l.pad_bottom = l.pad_right = 1;
      l.weights = {{"w", {oc, ic, 3, 3}, Random(int64_t(oc) * ic * 9, rng)}, {"b", {oc}, Random(oc, rng)}};
      g.layers.push_back(l);
    };
    conv("c1", "x", 3, 20);
    Layer u = UnaryLayer(c);
    u.name = "u", u.inputs = {"c1"};
    g.layers.push_back(u);
    conv("c2", "u", 20, 4);
    g.outputs = {"c2"};
    ASSERT_TRUE(g.Finalize().ok());
    auto blocked = Engine::Create(g, EngineOptions{1, true, true});
    auto plain = Engine::Create(g, EngineOptions{1, true, false});
    ASSERT_TRUE(blocked.ok() && plain.ok());
    const TensorMap in = {{"x", SeededInput(x, 3)}};
    auto a = (*blocked)->RunAll(in);
    auto b = (*plain)->RunAll(in);
    ASSERT_TRUE(a.ok() && b.ok()) << LayerKindName(c.kind);
    EXPECT_EQ(a->at("c2").data, b->at("c2").data) << LayerKindName(c.kind);
  }
}

}  // namespace
}  // namespace ionn
