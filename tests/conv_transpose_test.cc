// ConvTranspose through import and the engine against a naive scatter loop
// (in double) on seeded shapes: groups, strides, dilations, asymmetric pads,
// output_padding, auto_pad SAME_UPPER/SAME_LOWER/VALID, output_shape, with
// and without bias; export then import gives the same output; and the
// refusals of what the spec forbids, one line naming the node.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include <onnx/onnx_pb.h>

#include "ionn/engine.h"
#include "ionn/onnx_io.h"
#include "random_values.h"

namespace ionn {
namespace {

struct Case {
  Shape x;        // [N, C, H, W]
  int64_t m, group, kh, kw;
  std::vector<int64_t> strides, dilations, pads, output_padding, output_shape;
  std::string auto_pad;
  bool bias;
};

// An opset-13 model with one float input x of shape `x`.
onnx::ModelProto WithInput(const Shape& x) {
  onnx::ModelProto m;
  m.set_ir_version(7);
  m.add_opset_import()->set_version(13);
  auto* in = m.mutable_graph()->add_input();
  in->set_name("x");
  in->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  for (int64_t d : x) in->mutable_type()->mutable_tensor_type()->mutable_shape()->add_dim()->set_dim_value(d);
  return m;
}

onnx::ModelProto OneConvTranspose(const Case& c, const std::vector<float>& w, const std::vector<float>& b) {
  onnx::ModelProto m = WithInput(c.x);
  auto* g = m.mutable_graph();
  auto* n = g->add_node();
  n->set_name("up"), n->set_op_type("ConvTranspose");
  n->add_input("x"), n->add_input("W");
  auto* wt = g->add_initializer();
  wt->set_name("W"), wt->set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : {c.x[1], c.m / c.group, c.kh, c.kw}) wt->add_dims(d);
  for (float v : w) wt->add_float_data(v);
  if (c.bias) {
    n->add_input("B");
    auto* bt = g->add_initializer();
    bt->set_name("B"), bt->set_data_type(onnx::TensorProto::FLOAT), bt->add_dims(c.m);
    for (float v : b) bt->add_float_data(v);
  }
  auto ints = [&](const char* name, const std::vector<int64_t>& v) {
    if (v.empty()) return;
    auto* a = n->add_attribute();
    a->set_name(name), a->set_type(onnx::AttributeProto::INTS);
    for (int64_t x : v) a->add_ints(x);
  };
  ints("strides", c.strides), ints("dilations", c.dilations), ints("pads", c.pads);
  ints("output_padding", c.output_padding), ints("output_shape", c.output_shape);
  if (c.group != 1) {
    auto* a = n->add_attribute();
    a->set_name("group"), a->set_type(onnx::AttributeProto::INT), a->set_i(c.group);
  }
  if (!c.auto_pad.empty()) {
    auto* a = n->add_attribute();
    a->set_name("auto_pad"), a->set_type(onnx::AttributeProto::STRING), a->set_s(c.auto_pad);
  }
  n->add_output("y");
  g->add_output()->set_name("y");
  return m;
}

// The spec's definition, by scattering each input pixel: total padding
// from output_shape (SAME: input * stride) split as the spec says.
Tensor Naive(const Case& c, const std::vector<float>& x, const std::vector<float>& w, const std::vector<float>& b) {
  const int64_t n = c.x[0], ch = c.x[1], h = c.x[2], wd = c.x[3], mg = c.m / c.group, cg = ch / c.group;
  const std::vector<int64_t> st = c.strides.empty() ? std::vector<int64_t>{1, 1} : c.strides;
  const std::vector<int64_t> di = c.dilations.empty() ? std::vector<int64_t>{1, 1} : c.dilations;
  const std::vector<int64_t> op = c.output_padding.empty() ? std::vector<int64_t>{0, 0} : c.output_padding;
  std::vector<int64_t> pads = c.pads.empty() ? std::vector<int64_t>{0, 0, 0, 0} : c.pads;
  const int64_t k[2] = {c.kh, c.kw}, in[2] = {h, wd};
  int64_t out[2];
  std::vector<int64_t> target = c.output_shape;
  if (target.empty() && (c.auto_pad == "SAME_UPPER" || c.auto_pad == "SAME_LOWER")) target = {h * st[0], wd * st[1]};
  if (c.auto_pad == "VALID") pads = {0, 0, 0, 0};
  for (int d = 0; d < 2; ++d) {
    const int64_t full = st[d] * (in[d] - 1) + op[d] + (k[d] - 1) * di[d] + 1;
    if (!target.empty()) {
      const int64_t total = full - target[d];  // below 0: rows past the input's reach, at the end
      pads[d] = total < 0 ? 0 : c.auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      pads[2 + d] = total - pads[d];
    }
    out[d] = full - pads[d] - pads[2 + d];
  }
  Tensor y;
  y.shape = {n, c.m, out[0], out[1]};
  std::vector<double> acc(ElementCount(y.shape), 0.0);
  for (int64_t s = 0; s < n; ++s)
    for (int64_t ic = 0; ic < ch; ++ic)
      for (int64_t i = 0; i < h; ++i)
        for (int64_t j = 0; j < wd; ++j)
          for (int64_t o = 0; o < mg; ++o)
            for (int64_t p = 0; p < c.kh; ++p)
              for (int64_t q = 0; q < c.kw; ++q) {
                const int64_t oh = i * st[0] - pads[0] + p * di[0], ow = j * st[1] - pads[1] + q * di[1];
                if (oh < 0 || oh >= out[0] || ow < 0 || ow >= out[1]) continue;
                const int64_t oc = (ic / cg) * mg + o;
                acc[((s * c.m + oc) * out[0] + oh) * out[1] + ow] +=
                    double(x[((s * ch + ic) * h + i) * wd + j]) * w[((ic * mg + o) * c.kh + p) * c.kw + q];
              }
  if (c.bias) {
    for (int64_t s = 0; s < n; ++s)
      for (int64_t oc = 0; oc < c.m; ++oc)
        for (int64_t e = 0; e < out[0] * out[1]; ++e) acc[(s * c.m + oc) * out[0] * out[1] + e] += b[oc];
  }
  y.data.assign(acc.begin(), acc.end());
  return y;
}

TEST(ConvTranspose, MatchesANaiveScatterLoop) {
  const Case cases[] = {
      {{1, 3, 4, 5}, 2, 1, 3, 3, {}, {}, {}, {}, {}, "", false},
      {{1, 4, 5, 5}, 6, 2, 3, 3, {2, 2}, {}, {1, 1, 1, 1}, {1, 1}, {}, "", true},     // groups, output_padding
      {{2, 3, 4, 3}, 4, 1, 4, 4, {2, 2}, {}, {1, 1, 1, 1}, {}, {}, "", true},         // a decoder's 2x
      {{1, 2, 5, 4}, 3, 1, 3, 2, {3, 2}, {2, 1}, {0, 1, 2, 0}, {2, 1}, {}, "", true}, // dilation, asymmetric
      {{1, 2, 3, 3}, 2, 1, 3, 3, {2, 2}, {}, {}, {}, {}, "SAME_UPPER", true},
      {{1, 2, 3, 3}, 2, 1, 3, 3, {2, 2}, {}, {}, {}, {}, "SAME_LOWER", false},
      {{1, 2, 3, 3}, 2, 1, 3, 3, {2, 2}, {}, {1, 1, 1, 1}, {}, {}, "VALID", false},
      {{1, 2, 3, 3}, 2, 1, 3, 3, {3, 2}, {}, {}, {}, {8, 7}, "", true},              // output_shape
      {{1, 2, 3, 3}, 2, 1, 3, 3, {3, 2}, {}, {}, {}, {10, 8}, "", true},             // past the input's reach
      {{1, 2, 3, 3}, 2, 1, 3, 3, {3, 2}, {}, {}, {}, {12, 10}, "SAME_UPPER", true},
      {{1, 2, 3, 3}, 2, 1, 3, 3, {3, 2}, {}, {}, {1, 1}, {9, 7}, "SAME_UPPER", true},
      {{1, 8, 4, 4}, 8, 8, 3, 3, {2, 2}, {}, {1, 1, 1, 1}, {1, 1}, {}, "", true},    // depthwise
      {{1, 5, 6, 6}, 7, 1, 1, 1, {1, 1}, {}, {}, {}, {}, "", true},                   // 1x1
      {{1, 2, 1, 2}, 2, 2, 1, 3, {3, 1}, {}, {2, 0, 0, 1}, {2, 0}, {}, "", true},     // rows cropped: bias alone
  };
  std::mt19937 rng(17);
  for (const Case& c : cases) {
    const std::string what = "x " + ShapeToString(c.x) + " m " + std::to_string(c.m) + " group " +
                             std::to_string(c.group) + " auto_pad '" + c.auto_pad + "'";
    const std::vector<float> x = Random(ElementCount(c.x), rng, -1, 1);
    const std::vector<float> w = Random(c.x[1] * (c.m / c.group) * c.kh * c.kw, rng, -1, 1);
    const std::vector<float> b = Random(c.m, rng, -1, 1);
    auto g = ParseOnnx(OneConvTranspose(c, w, b).SerializeAsString());
    ASSERT_TRUE(g.ok()) << what << ": " << g.status().message();
    const Tensor want = Naive(c, x, w, b);
    ASSERT_EQ(g->layers.back().output_shape, want.shape) << what;
    for (int round = 0; round < 2; ++round) {  // imported, then exported and imported again
      auto engine = Engine::Create(*g);
      ASSERT_TRUE(engine.ok()) << what << ": " << engine.status().message();
      auto out = (*engine)->RunAll({{"x", Tensor{c.x, x}}});
      ASSERT_TRUE(out.ok()) << what << ": " << out.status().message();
      const Tensor& y = out->at(g->outputs[0]);
      ASSERT_EQ(y.shape, want.shape) << what;
      for (size_t i = 0; i < want.data.size(); ++i) {
        ASSERT_NEAR(y.data[i], want.data[i], 1e-4 * (1 + std::abs(want.data[i]))) << what << " at " << i;
      }
      auto bytes = SerializeOnnx(*g);
      ASSERT_TRUE(bytes.ok()) << bytes.status().message();
      g = ParseOnnx(*bytes);
      ASSERT_TRUE(g.ok()) << what << " re-imported: " << g.status().message();
    }
  }
}

TEST(ConvTranspose, RefusesWhatTheSpecForbidsInOneLine) {
  const Case refused[] = {
      {{1, 2, 3, 3}, 2, 1, 3, 3, {2, 2}, {}, {}, {2, 0}, {}, "", false},   // output_padding not below the stride
      {{1, 2, 3, 3}, 2, 1, 3, 3, {0, 1}, {}, {}, {}, {}, "", false},       // stride 0
      {{1, 2, 3, 3}, 2, 1, 3, 3, {}, {}, {-1, 0, 0, 0}, {}, {}, "", false}, // a negative pad
      {{1, 2, 3, 3}, 2, 1, 3, 3, {}, {}, {3, 3, 3, 3}, {}, {}, "", false},  // no output left
      {{1, 2, 3, 3}, 2, 1, 3, 3, {}, {}, {}, {}, {0, 5}, "", false},       // an empty output_shape
      {{1, 2, 3, 3}, 2, 1, 3, 3, {}, {}, {}, {}, {}, "SAME", false},       // not an auto_pad value
      {{1, 3, 3, 3}, 2, 2, 3, 3, {}, {}, {}, {}, {}, "", false},           // group does not divide C
      {{1, 2, 3, 3}, 2, 1, 3, 3, {2}, {}, {}, {}, {}, "", false},          // one stride for two axes
  };
  std::mt19937 rng(1);
  for (const Case& c : refused) {
    const std::vector<float> w = Random(c.x[1] * std::max<int64_t>(1, c.m / c.group) * c.kh * c.kw, rng);
    auto g = ParseOnnx(OneConvTranspose(c, w, {}).SerializeAsString());
    ASSERT_FALSE(g.ok()) << "imported x " << ShapeToString(c.x);
    const std::string& msg = g.status().message();
    EXPECT_NE(msg.find("node 0 'up' (ConvTranspose)"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

// One node of `op` over x [N, C, L] (1-D: import runs it as the 2-D one
// over [N, C, 1, L]) with weight [a, b, k], bias [m] and INTS attributes.
onnx::ModelProto OneNode1d(const std::string& op, const Shape& x, const Shape& w_shape, const std::vector<float>& w,
                           const std::vector<float>& b, const std::vector<std::pair<std::string, std::vector<int64_t>>>& ints,
                           int64_t group) {
  onnx::ModelProto m = WithInput(x);
  auto* g = m.mutable_graph();
  auto* n = g->add_node();
  n->set_name("up"), n->set_op_type(op);
  n->add_input("x"), n->add_input("W"), n->add_input("B");
  auto* wt = g->add_initializer();
  wt->set_name("W"), wt->set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : w_shape) wt->add_dims(d);
  for (float v : w) wt->add_float_data(v);
  auto* bt = g->add_initializer();
  bt->set_name("B"), bt->set_data_type(onnx::TensorProto::FLOAT), bt->add_dims(static_cast<int64_t>(b.size()));
  for (float v : b) bt->add_float_data(v);
  for (const auto& [name, values] : ints) {
    auto* a = n->add_attribute();
    a->set_name(name), a->set_type(onnx::AttributeProto::INTS);
    for (int64_t v : values) a->add_ints(v);
  }
  auto* a = n->add_attribute();
  a->set_name("group"), a->set_type(onnx::AttributeProto::INT), a->set_i(group);
  n->add_output("y");
  g->add_output()->set_name("y");
  return m;
}

// 1-D ConvTranspose against the 2-D scatter loop at height 1; 1-D Conv
// against its sum; both named as the node, shapes [N, M, L'].
TEST(ConvTranspose, OneDimensionalRunsAsTwoDimensionalAndMatches) {
  std::mt19937 rng(8);
  const Case c = {{2, 4, 1, 7}, 6, 2, 1, 3, {1, 2}, {1, 2}, {0, 1, 0, 2}, {0, 1}, {}, "", true};
  const std::vector<float> x = Random(ElementCount(c.x), rng, -1, 1);
  const std::vector<float> w = Random(4 * 3 * 3, rng, -1, 1);
  const std::vector<float> b = Random(6, rng, -1, 1);
  const Tensor want = Naive(c, x, w, b);
  auto g = ParseOnnx(OneNode1d("ConvTranspose", {2, 4, 7}, {4, 3, 3}, w, b,
                               {{"strides", {2}}, {"dilations", {2}}, {"pads", {1, 2}}, {"output_padding", {1}}}, 2)
                         .SerializeAsString());
  ASSERT_TRUE(g.ok()) << g.status().message();
  EXPECT_EQ(g->layers.back().name, "up");
  auto out = Engine::Create(*g).value()->RunAll({{"x", Tensor{{2, 4, 7}, x}}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  const Tensor& y = out->at(g->outputs[0]);
  ASSERT_EQ(y.shape, (Shape{want.shape[0], want.shape[1], want.shape[3]}));
  for (size_t i = 0; i < want.data.size(); ++i) ASSERT_NEAR(y.data[i], want.data[i], 1e-4 * (1 + std::abs(want.data[i])));

  // Conv: y[n][m][o] = b[m] + sum over c of its group and t of x[n][c][o * s - p + t * d] w[m][c][t].
  const int64_t N = 2, C = 4, L = 9, M = 6, G = 2, K = 3, S = 2, D = 2, P0 = 2, P1 = 1;
  const std::vector<float> cx = Random(N * C * L, rng, -1, 1), cw = Random(M * (C / G) * K, rng, -1, 1);
  auto cg = ParseOnnx(OneNode1d("Conv", {N, C, L}, {M, C / G, K}, cw, b,
                                {{"strides", {S}}, {"dilations", {D}}, {"pads", {P0, P1}}, {"kernel_shape", {K}}}, G)
                          .SerializeAsString());
  ASSERT_TRUE(cg.ok()) << cg.status().message();
  const int64_t out_len = (L + P0 + P1 - (K - 1) * D - 1) / S + 1;
  auto cy = Engine::Create(*cg).value()->RunAll({{"x", Tensor{{N, C, L}, cx}}});
  ASSERT_TRUE(cy.ok()) << cy.status().message();
  const Tensor& conv = cy->at(cg->outputs[0]);
  ASSERT_EQ(conv.shape, (Shape{N, M, out_len}));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t o = 0; o < out_len; ++o) {
        double sum = b[m];
        for (int64_t ci = 0; ci < C / G; ++ci)
          for (int64_t t = 0; t < K; ++t) {
            const int64_t at = o * S - P0 + t * D;
            if (at < 0 || at >= L) continue;
            sum += double(cx[(n * C + (m / (M / G)) * (C / G) + ci) * L + at]) * cw[(m * (C / G) + ci) * K + t];
          }
        ASSERT_NEAR(conv.data[(n * M + m) * out_len + o], sum, 1e-4 * (1 + std::abs(sum))) << n << " " << m << " " << o;
      }
}

}  // namespace
}  // namespace ionn
