// Every layer kind against a naive reference on seeded random shapes, and
// split execution against whole execution on the zoo models.
#include "ionn/engine.h"

#include <gtest/gtest.h>
#include <oneapi/dnnl/dnnl.hpp>

#include <cmath>
#include <limits>
#include <random>
#include <thread>

#include "ionn/onnx_io.h"
#include "ionn/zoo.h"
#include "random_values.h"

namespace ionn {
namespace {

// Appends `l` to `g` as layer `name` reading `inputs`.
void Add(Graph& g, Layer l, const std::string& name, std::vector<std::string> inputs) {
  l.name = name, l.inputs = std::move(inputs);
  g.layers.push_back(std::move(l));
}

// A batch norm of `c` channels with seeded random statistics.
Layer RandomBatchNorm(int64_t c, std::mt19937& rng) {
  Layer bn;
  bn.kind = LayerKind::kBatchNorm;
  bn.weights = {{"g", {c}, Random(c, rng)}, {"b", {c}, Random(c, rng)}, {"m", {c}, Random(c, rng)},
                {"v", {c}, Random(c, rng, 0.5f, 2)}};
  return bn;
}

// One-layer graph around `l` reading input "x" of shape `x`; returns the output.
Tensor RunOne(Layer l, const Shape& x, const Tensor& input, const std::vector<Shape>& more = {},
              const std::vector<Tensor>& more_in = {}) {
  Graph g;
  g.inputs = {{"x", x}};
  l.inputs.insert(l.inputs.begin(), "x");
  for (size_t i = 0; i < more.size(); ++i) {
    g.inputs.push_back({"x" + std::to_string(i + 1), more[i]});
    l.inputs.push_back("x" + std::to_string(i + 1));
  }
  l.name = "y";
  g.layers = {l};
  g.outputs = {"y"};
  Status s = g.Finalize();
  EXPECT_TRUE(s.ok()) << s.message();
  if (!s.ok()) return {};
  auto e = Engine::Create(g);
  EXPECT_TRUE(e.ok()) << e.status().message();
  if (!e.ok()) return {};
  TensorMap in = {{"x", input}};
  for (size_t i = 0; i < more_in.size(); ++i) in["x" + std::to_string(i + 1)] = more_in[i];
  auto out = (*e)->RunAll(in);
  EXPECT_TRUE(out.ok()) << out.status().message();
  if (!out.ok()) return {};
  return out->at("y");
}

void ExpectClose(const std::vector<float>& got, const std::vector<float>& want, double tol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], tol * (1 + std::fabs(want[i]))) << what << " at " << i;
  }
}

// Trials 12 on: dilations and pads as large as the input or larger (ASPP),
// where taps that read only padding are left out of the kernel.
TEST(EngineKernels, ConvolutionMatchesNaive) {
  std::mt19937 rng(1);
  for (int trial = 0; trial < 24; ++trial) {
    const int group = (trial % 3 == 2) ? 4 : (trial % 3 == 1 ? 2 : 1);
    const int ic = group * (1 + rng() % 3), oc = group * (1 + rng() % 3);
    const int large[] = {3, 6, 9, 12};
    const int dil = trial >= 12 ? large[rng() % 4] : 1 + (trial % 5 == 4);
    const int kernels[] = {1, 2, 3, 5};
    const int k = dil >= 2 ? 3 : kernels[rng() % 4], stride = 1 + rng() % 2;
    const int pad = trial >= 12 ? dil - static_cast<int>(rng() % 2) : static_cast<int>(rng() % 2);
    const Shape x = {1, ic, 7 + static_cast<int>(rng() % 5), 6 + static_cast<int>(rng() % 5)};
    Layer l;
    l.kind = LayerKind::kConv;
    l.out_channels = oc, l.group = group, l.kernel_h = l.kernel_w = k, l.stride_h = l.stride_w = stride;
    l.pad_top = l.pad_left = pad, l.pad_bottom = l.pad_right = pad + (trial % 2), l.dilation_h = l.dilation_w = dil;
    l.weights = {{"w", {oc, ic / group, k, k}, Random(int64_t(oc) * (ic / group) * k * k, rng)},
                 {"b", {oc}, Random(oc, rng)}};
    const Tensor in{x, Random(ElementCount(x), rng)};
    const Tensor out = RunOne(l, x, in);
    ASSERT_EQ(out.shape.size(), 4u);
    const int64_t OH = out.shape[2], OW = out.shape[3], H = x[2], W = x[3];
    std::vector<float> want(out.data.size());
    for (int o = 0; o < oc; ++o) {
      const int g = o / (oc / group);
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double acc = l.weights[1].data[o];
          for (int c = 0; c < ic / group; ++c)
            for (int i = 0; i < k; ++i)
              for (int j = 0; j < k; ++j) {
                const int64_t h = oh * stride - pad + i * dil, w = ow * stride - pad + j * dil;
                if (h < 0 || h >= H || w < 0 || w >= W) continue;
                acc += double(in.data[((g * (ic / group) + c) * H + h) * W + w]) *
                       l.weights[0].data[((o * (ic / group) + c) * k + i) * k + j];
              }
          want[(o * OH + oh) * OW + ow] = float(acc);
        }
    }
    ExpectClose(out.data, want, 1e-4, "conv trial " + std::to_string(trial));
  }
}

bool HasAvx512() {
  const int avx512 = static_cast<int>(dnnl::cpu_isa::avx512_core);
  return (static_cast<int>(dnnl::get_effective_cpu_isa()) & avx512) == avx512;
}

// A 3x3 convolution of stride 1 and padding 1 from `ic` to `oc` channels.
Layer Conv3x3(int64_t ic, int64_t oc, std::mt19937& rng) {
  Layer l;
  l.kind = LayerKind::kConv, l.out_channels = oc, l.kernel_h = l.kernel_w = 3;
  l.pad_top = l.pad_left = l.pad_bottom = l.pad_right = 1;
  l.weights = {{"w", {oc, ic, 3, 3}, Random(oc * ic * 9, rng, -0.2f, 0.2f)}, {"b", {oc}, Random(oc, rng)}};
  return l;
}

// Shapes where the engine picks Winograd (on AVX-512) and two where it does
// not: all against a naive sum in double, and against the direct algorithm.
TEST(EngineKernels, WinogradConvolutionMatchesNaive) {
  std::mt19937 rng(17);
  const Shape shapes[] = {{1, 64, 14, 14}, {1, 64, 20, 17}, {2, 128, 16, 16},
                          {1, 256, 7, 7},  {1, 32, 16, 16}, {1, 64, 7, 7}};
  for (const Shape& x : shapes) {
    const int64_t ic = x[1], oc = ic == 128 ? 32 : ic == 256 ? 256 : 48, H = x[2], W = x[3];
    const Layer l = Conv3x3(ic, oc, rng);
    const Tensor in{x, Random(ElementCount(x), rng)};
    Graph g;
    g.inputs = {{"x", x}};
    Add(g, l, "y", {"x"});
    g.outputs = {"y"};
    ASSERT_TRUE(g.Finalize().ok());
    EngineOptions direct_only;
    direct_only.winograd = false;
    auto fast = Engine::Create(g), direct = Engine::Create(g, direct_only);
    ASSERT_TRUE(fast.ok() && direct.ok());
    auto a = (*fast)->RunAll({{"x", in}});
    auto b = (*direct)->RunAll({{"x", in}});
    ASSERT_TRUE(a.ok() && b.ok());
    const Tensor& out = a->at("y");
    std::vector<float> want(out.data.size());
    for (int64_t n = 0; n < x[0]; ++n)
      for (int64_t o = 0; o < oc; ++o)
        for (int64_t oh = 0; oh < H; ++oh)
          for (int64_t ow = 0; ow < W; ++ow) {
            double acc = l.weights[1].data[o];
            for (int64_t c = 0; c < ic; ++c)
              for (int i = 0; i < 3; ++i)
                for (int j = 0; j < 3; ++j) {
                  const int64_t h = oh - 1 + i, w = ow - 1 + j;
                  if (h < 0 || h >= H || w < 0 || w >= W) continue;
                  acc += double(in.data[((n * ic + c) * H + h) * W + w]) *
                         l.weights[0].data[((o * ic + c) * 3 + i) * 3 + j];
                }
            want[((n * oc + o) * H + oh) * W + ow] = float(acc);
          }
    ExpectClose(out.data, want, 1e-4, "winograd " + ShapeToString(x));
    ExpectClose(b->at("y").data, want, 1e-4, "direct " + ShapeToString(x));
    // Winograd rounds differently: where it runs, some bit changes.
    const bool eligible = ic * oc > 2048 && (H * W >= 100 || ic * oc >= 49152);
    // oneDNN 2.6 has Winograd only for AVX-512 (also when ONEDNN_MAX_CPU_ISA
    // caps it below): elsewhere the direct algorithm runs, with no extra
    // bytes; under IONN_BACKEND=xnnpack (ctest engine_xnnpack) XNNPACK runs
    // both engines' convolution.
    const bool on_xnnpack = (*fast)->options().backend == EngineBackend::kXnnpack &&
                            EngineBackendAvailable(EngineBackend::kXnnpack);
    const bool winograd = eligible && HasAvx512() && !on_xnnpack;
    EXPECT_EQ((*fast)->KernelExtraBytes(0), winograd ? uint64_t(27 * 4) * ic * oc : 0) << ShapeToString(x);
    EXPECT_EQ((*direct)->KernelExtraBytes(0), 0u);
    EXPECT_EQ(out.data != b->at("y").data, winograd) << ShapeToString(x);
  }
}

TEST(EngineKernels, FullyConnectedMatchesNaiveOn2dAnd4dInputs) {
  std::mt19937 rng(2);
  for (const Shape& x : {Shape{1, 37}, Shape{1, 5, 3, 2}}) {
    const int64_t in_features = ElementCount(x);
    const int oc = 11;
    Layer l;
    l.kind = LayerKind::kFc;
    l.out_channels = oc;
    l.weights = {{"w", {oc, in_features}, Random(oc * in_features, rng)}, {"b", {oc}, Random(oc, rng)}};
    const Tensor in{x, Random(in_features, rng)};
    const Tensor out = RunOne(l, x, in);
    std::vector<float> want(oc);
    for (int o = 0; o < oc; ++o) {
      double acc = l.weights[1].data[o];
      for (int64_t i = 0; i < in_features; ++i) acc += double(in.data[i]) * l.weights[0].data[o * in_features + i];
      want[o] = float(acc);
    }
    ExpectClose(out.data, want, 1e-4, "fc " + ShapeToString(x));
  }
}

TEST(EngineKernels, LrnMatchesNaive) {
  std::mt19937 rng(3);
  const Shape x = {1, 9, 5, 4};
  Layer l;
  l.kind = LayerKind::kLrn;
  l.lrn_size = 5, l.lrn_alpha = 0.3f, l.lrn_beta = 0.75f, l.lrn_bias = 1.5f;
  const Tensor in{x, Random(ElementCount(x), rng, -2, 2)};
  const Tensor out = RunOne(l, x, in);
  std::vector<float> want(in.data.size());
  const int64_t C = x[1], HW = x[2] * x[3];
  for (int64_t c = 0; c < C; ++c)
    for (int64_t p = 0; p < HW; ++p) {
      double sum = 0;
      for (int64_t d = c - 2; d <= c + 2; ++d)
        if (d >= 0 && d < C) sum += double(in.data[d * HW + p]) * in.data[d * HW + p];
      want[c * HW + p] = float(in.data[c * HW + p] / std::pow(1.5 + 0.3 / 5 * sum, 0.75));
    }
  ExpectClose(out.data, want, 1e-4, "lrn");
}

// Seeded random windows: N of 1 or 2, asymmetric pads up to 3 (as wide as
// the window, which oneDNN refuses), ceil mode, strides above the kernel,
// dilated max pooling (taps that all land in padding give -inf). Each runs
// alone (NCHW) and between two identity 1x1 convolutions, where it runs
// channels last when they pick NHWC.
TEST(EngineKernels, PoolingMatchesNaiveIncludingCeilMode) {
  std::mt19937 rng(4);
  auto pick = [&](int lo, int hi) { return lo + static_cast<int>(rng() % (hi - lo + 1)); };
  for (int trial = 0; trial < 160; ++trial) {
    const bool is_max = trial % 2 == 0;
    const Shape x = {pick(1, 2), pick(1, 4), pick(1, 9), pick(1, 9)};
    Layer l;
    l.kind = is_max ? LayerKind::kMaxPool : LayerKind::kAvgPool;
    l.kernel_h = pick(1, 4), l.kernel_w = pick(1, 4);
    l.stride_h = pick(1, 3), l.stride_w = pick(1, 3);
    l.pad_top = pick(0, 3), l.pad_left = pick(0, 3), l.pad_bottom = pick(0, 3), l.pad_right = pick(0, 3);
    l.dilation_h = is_max ? pick(1, 3) : 1, l.dilation_w = is_max ? pick(1, 3) : 1;
    l.ceil_mode = pick(0, 1);
    l.count_include_pad = pick(0, 1);
    const int64_t extent_h = (l.kernel_h - 1) * l.dilation_h + 1, extent_w = (l.kernel_w - 1) * l.dilation_w + 1;
    if (x[2] + l.pad_top + l.pad_bottom < extent_h || x[3] + l.pad_left + l.pad_right < extent_w) continue;
    const Tensor in{x, Random(ElementCount(x), rng)};
    const Tensor out = RunOne(l, x, in);
    ASSERT_EQ(out.shape.size(), 4u);
    const int64_t H = x[2], W = x[3], OH = out.shape[2], OW = out.shape[3];
    std::vector<float> want(out.data.size());
    for (int64_t c = 0; c < x[0] * x[1]; ++c)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          // Caffe: the window, clipped to the padded input, then its taps inside the input.
          const int64_t hs = oh * l.stride_h - l.pad_top, ws = ow * l.stride_w - l.pad_left;
          const int64_t he = std::min<int64_t>(hs + extent_h, H + l.pad_bottom), we = std::min<int64_t>(ws + extent_w, W + l.pad_right);
          double acc = is_max ? -INFINITY : 0;
          int64_t inside = 0;
          for (int64_t h = hs; h < he; h += l.dilation_h)
            for (int64_t w = ws; w < we; w += l.dilation_w) {
              if (h < 0 || h >= H || w < 0 || w >= W) continue;
              const double v = in.data[(c * H + h) * W + w];
              acc = is_max ? std::max(acc, v) : acc + v;
              ++inside;
            }
          const int64_t divisor = l.count_include_pad ? (he - hs) * (we - ws) : inside;
          if (!is_max) acc = divisor > 0 ? acc / divisor : 0;
          want[(c * OH + oh) * OW + ow] = float(acc);
        }
    const std::string what = "pool trial " + std::to_string(trial) + " " + ShapeToString(x);
    auto expect = [&](const std::vector<float>& got, const std::string& where) {
      ASSERT_EQ(got.size(), want.size()) << where;
      for (size_t i = 0; i < got.size(); ++i) {
        if (std::isinf(want[i])) {
          ASSERT_EQ(got[i], want[i]) << where << " at " << i;
        } else {
          ASSERT_NEAR(got[i], want[i], 1e-5 * (1 + std::fabs(want[i]))) << where << " at " << i;
        }
      }
    };
    expect(out.data, what);
    // The same pool between identity convolutions (exact copies of their input).
    Graph g;
    g.inputs = {{"x", x}};
    const int C = static_cast<int>(x[1]);
    Layer id;  // depthwise, so that a -inf meets no zero weight
    id.kind = LayerKind::kConv, id.out_channels = C, id.group = C, id.kernel_h = id.kernel_w = 1;
    id.weights = {{"w", {C, 1, 1, 1}, std::vector<float>(C, 1.0f)}};
    Layer first = id, pool = l, last = id;
    first.name = "in", first.inputs = {"x"};
    pool.name = "pool", pool.inputs = {"in"};
    last.name = "out", last.inputs = {"pool"};
    g.layers = {first, pool, last};
    g.outputs = {"out"};
    ASSERT_TRUE(g.Finalize().ok()) << what;
    auto e = Engine::Create(g);
    ASSERT_TRUE(e.ok()) << what << ": " << e.status().message();
    auto wrapped = (*e)->RunAll({{"x", in}});
    ASSERT_TRUE(wrapped.ok()) << what;
    expect(wrapped->at("out").data, what + " between convolutions");
  }
  Layer g;
  g.kind = LayerKind::kGlobalAvgPool;
  const Shape x = {1, 4, 3, 5};
  const Tensor in{x, Random(60, rng)};
  const Tensor out = RunOne(g, x, in);
  for (int c = 0; c < 4; ++c) {
    double sum = 0;
    for (int i = 0; i < 15; ++i) sum += in.data[c * 15 + i];
    EXPECT_NEAR(out.data[c], sum / 15, 1e-5);
  }
}

TEST(EngineKernels, ElementwiseKindsMatchNaive) {
  std::mt19937 rng(5);
  const Shape x = {1, 6, 4, 3};
  const int64_t n = ElementCount(x);
  const Tensor in{x, Random(n, rng, -8, 8)};
  Layer relu;
  relu.kind = LayerKind::kRelu;
  Layer clip;
  clip.kind = LayerKind::kClip;
  clip.clip_min = 0, clip.clip_max = 6;
  const Tensor r = RunOne(relu, x, in), c = RunOne(clip, x, in);
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_EQ(r.data[i], std::max(in.data[i], 0.0f));
    EXPECT_EQ(c.data[i], std::min(std::max(in.data[i], 0.0f), 6.0f));
  }
  Layer bn;
  bn.kind = LayerKind::kBatchNorm;
  bn.epsilon = 1e-3f;
  bn.weights = {{"g", {6}, Random(6, rng)}, {"b", {6}, Random(6, rng)}, {"m", {6}, Random(6, rng)},
                {"v", {6}, Random(6, rng, 0.5f, 2)}};
  const Tensor b = RunOne(bn, x, in);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t ch = i / 12;
    const double want = (in.data[i] - bn.weights[2].data[ch]) / std::sqrt(bn.weights[3].data[ch] + 1e-3) *
                            bn.weights[0].data[ch] + bn.weights[1].data[ch];
    EXPECT_NEAR(b.data[i], want, 1e-4);
  }
  Layer add;
  add.kind = LayerKind::kAdd;
  const Tensor other{x, Random(n, rng)};
  const Tensor a = RunOne(add, x, in, {x}, {other});
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(a.data[i], in.data[i] + other.data[i]);
  Layer cat;
  cat.kind = LayerKind::kConcat;
  cat.axis = 1;
  const Shape y = {1, 2, 4, 3};
  const Tensor second{y, Random(ElementCount(y), rng)};
  const Tensor cc = RunOne(cat, x, in, {y}, {second});
  ASSERT_EQ(cc.shape, (Shape{1, 8, 4, 3}));
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(cc.data[i], in.data[i]);
  for (int64_t i = 0; i < ElementCount(y); ++i) EXPECT_EQ(cc.data[n + i], second.data[i]);
  Layer sm;
  sm.kind = LayerKind::kSoftmax;
  sm.axis = 1;
  const Tensor s = RunOne(sm, x, in);
  for (int64_t p = 0; p < 12; ++p) {  // per spatial position, over the 6 channels
    double sum = 0, mx = -1e30;
    for (int ch = 0; ch < 6; ++ch) mx = std::max(mx, double(in.data[ch * 12 + p]));
    for (int ch = 0; ch < 6; ++ch) sum += std::exp(in.data[ch * 12 + p] - mx);
    for (int ch = 0; ch < 6; ++ch) EXPECT_NEAR(s.data[ch * 12 + p], std::exp(in.data[ch * 12 + p] - mx) / sum, 1e-6);
  }
  Layer flat;
  flat.kind = LayerKind::kFlatten;
  const Tensor f = RunOne(flat, x, in);
  EXPECT_EQ(f.shape, (Shape{1, n}));
  EXPECT_EQ(f.data, in.data);
}

// The kinds PyTorch's exports add, on seeded shapes: activations of the
// sigmoid family, broadcasting arithmetic, spatial means, transposes,
// slices and padding, each against a loop written from the ONNX spec.
TEST(EngineKernels, ExportedModelKindsMatchNaive) {
  std::mt19937 rng(9);
  for (int trial = 0; trial < 6; ++trial) {
    std::uniform_int_distribution<int> dim(1, 7);
    const Shape x = {1 + trial % 2, dim(rng) + 1, dim(rng), dim(rng)};
    const int64_t n = ElementCount(x);
    const int64_t N = x[0], C = x[1], H = x[2], W = x[3];
    const Tensor in{x, Random(n, rng, -6, 6)};
    auto at = [&](const Tensor& t, int64_t a, int64_t b, int64_t c, int64_t d) {
      return t.data[((a * t.shape[1] + b) * t.shape[2] + c) * t.shape[3] + d];
    };
    const std::string where = "trial " + std::to_string(trial) + " " + ShapeToString(x);

    Layer sig;
    sig.kind = LayerKind::kSigmoid;
    Layer hsig;
    hsig.kind = LayerKind::kHardSigmoid;
    hsig.alpha = 0.3f, hsig.beta = 0.4f;
    Layer hswish;
    hswish.kind = LayerKind::kHardSwish;
    const Tensor ys = RunOne(sig, x, in), yh = RunOne(hsig, x, in), yw = RunOne(hswish, x, in);
    for (int64_t i = 0; i < n; ++i) {
      const double v = in.data[i];
      EXPECT_NEAR(ys.data[i], 1 / (1 + std::exp(-v)), 1e-6) << where;
      EXPECT_NEAR(yh.data[i], std::min(1.0, std::max(0.0, 0.3 * v + 0.4)), 1e-6) << where;
      EXPECT_NEAR(yw.data[i], v * std::min(1.0, std::max(0.0, v / 6 + 0.5)), 1e-5) << where;
    }

    // Broadcasting: [N,C,H,W] op [N,C,1,1] (a channel scale), op [W] (a
    // constant row, on either side), and [1,1,H,1] op [N,C,1,W].
    const Tensor scale{{N, C, 1, 1}, Random(N * C, rng, 0.5f, 2)};
    Layer mul;
    mul.kind = LayerKind::kMul;
    const Tensor ym = RunOne(mul, x, in, {scale.shape}, {scale});
    Layer div;
    div.kind = LayerKind::kDiv;
    div.weights = {{"row", {W}, Random(W, rng, 0.5f, 2)}};
    div.weight_first = true;
    const Tensor yd = RunOne(div, x, in);
    Layer sub;
    sub.kind = LayerKind::kSub;
    sub.weights = {{"row", {W}, Random(W, rng)}};
    const Tensor yb = RunOne(sub, x, in);
    const Tensor col{{1, 1, H, 1}, Random(H, rng)}, row{{N, C, 1, W}, Random(N * C * W, rng)};
    Layer add;
    add.kind = LayerKind::kAdd;
    const Tensor ya = RunOne(add, col.shape, col, {row.shape}, {row});
    ASSERT_EQ(ya.shape, x) << where;
    for (int64_t a = 0; a < N; ++a)
      for (int64_t b = 0; b < C; ++b)
        for (int64_t c = 0; c < H; ++c)
          for (int64_t d = 0; d < W; ++d) {
            const float v = at(in, a, b, c, d);
            EXPECT_FLOAT_EQ(at(ym, a, b, c, d), v * scale.data[a * C + b]) << where;
            EXPECT_FLOAT_EQ(at(yd, a, b, c, d), div.weights[0].data[d] / v) << where;
            EXPECT_FLOAT_EQ(at(yb, a, b, c, d), v - sub.weights[0].data[d]) << where;
            EXPECT_FLOAT_EQ(at(ya, a, b, c, d), col.data[c] + row.data[(a * C + b) * W + d]) << where;
          }

    Layer mean;
    mean.kind = LayerKind::kReduceMean;
    const bool keepdims = trial % 2 == 0;
    mean.attrs["axes"].ints = {2, 3};
    mean.attrs["keepdims"].ints = {keepdims};
    const Tensor yr = RunOne(mean, x, in);
    EXPECT_EQ(yr.shape, keepdims ? (Shape{N, C, 1, 1}) : (Shape{N, C})) << where;
    for (int64_t p = 0; p < N * C; ++p) {
      double sum = 0;
      for (int64_t i = 0; i < H * W; ++i) sum += in.data[p * H * W + i];
      EXPECT_NEAR(yr.data[p], sum / (H * W), 1e-5) << where;
    }

    Layer tr;
    tr.kind = LayerKind::kTranspose;
    tr.perm = {trial % 2 ? 3 : 0, 2, 1, trial % 2 ? 0 : 3};
    const Tensor yt = RunOne(tr, x, in);
    ASSERT_EQ(yt.shape, (Shape{x[tr.perm[0]], x[tr.perm[1]], x[tr.perm[2]], x[tr.perm[3]]})) << where;
    for (int64_t a = 0; a < N; ++a)
      for (int64_t b = 0; b < C; ++b)
        for (int64_t c = 0; c < H; ++c)
          for (int64_t d = 0; d < W; ++d) {
            const int64_t i[4] = {a, b, c, d};
            EXPECT_EQ(at(yt, i[tr.perm[0]], i[tr.perm[1]], i[tr.perm[2]], i[tr.perm[3]]), at(in, a, b, c, d)) << where;
          }

    Layer sl;
    sl.kind = LayerKind::kSlice;
    sl.axis = 1 + trial % 3;
    sl.slice_begin = x[sl.axis] > 1 ? 1 : 0;
    sl.slice_end = x[sl.axis];
    const Tensor yl = RunOne(sl, x, in);
    for (int64_t a = 0; a < yl.shape[0]; ++a)
      for (int64_t b = 0; b < yl.shape[1]; ++b)
        for (int64_t c = 0; c < yl.shape[2]; ++c)
          for (int64_t d = 0; d < yl.shape[3]; ++d) {
            int64_t i[4] = {a, b, c, d};
            i[sl.axis] += sl.slice_begin;
            EXPECT_EQ(at(yl, a, b, c, d), at(in, i[0], i[1], i[2], i[3])) << where;
          }

    Layer pad;
    pad.kind = LayerKind::kPad;
    pad.pad_top = 1, pad.pad_left = 2, pad.pad_bottom = trial % 2, pad.pad_right = 0;
    pad.pad_value = -0.5f;
    const Tensor yp = RunOne(pad, x, in);
    ASSERT_EQ(yp.shape, (Shape{N, C, H + 1 + trial % 2, W + 2})) << where;
    for (int64_t a = 0; a < N; ++a)
      for (int64_t b = 0; b < C; ++b)
        for (int64_t c = 0; c < yp.shape[2]; ++c)
          for (int64_t d = 0; d < yp.shape[3]; ++d) {
            const bool inside = c >= 1 && c < H + 1 && d >= 2;
            EXPECT_EQ(at(yp, a, b, c, d), inside ? at(in, a, b, c - 1, d - 2) : -0.5f) << where;
          }
  }
}

// A model of every new kind, exported to ONNX and imported again, computes
// the same (HardSwish goes out as HardSigmoid and Mul, opset 11 has no
// HardSwish).
TEST(EngineKernels, ExportedModelKindsRoundTripThroughOnnx) {
  std::mt19937 rng(13);
  Graph g;
  g.name = "kinds";
  g.inputs = {{"x", {1, 4, 5, 6}}};
  auto add = [&](Layer l, std::vector<std::string> inputs) {
    l.name = "l" + std::to_string(g.layers.size());
    l.inputs = std::move(inputs);
    g.layers.push_back(l);
    return l.name;
  };
  Layer pad;
  pad.kind = LayerKind::kPad;
  pad.pad_top = 1, pad.pad_right = 2, pad.pad_value = 0.25f;
  std::string t = add(pad, {"x"});
  Layer unary;
  for (LayerKind kind : {LayerKind::kHardSwish, LayerKind::kSigmoid, LayerKind::kHardSigmoid}) {
    unary.kind = kind;
    t = add(unary, {t});
  }
  Layer mul;
  mul.kind = LayerKind::kMul;
  mul.weights = {{"scale", {4, 1, 1}, Random(4, rng)}};
  mul.weight_first = true;
  t = add(mul, {t});
  Layer tr;
  tr.kind = LayerKind::kTranspose;
  tr.perm = {0, 1, 3, 2};
  t = add(tr, {t});
  Layer half;
  half.kind = LayerKind::kSlice;
  half.axis = 1, half.slice_begin = 0, half.slice_end = 2;
  const std::string lo = add(half, {t});
  half.slice_begin = 2, half.slice_end = 4;
  const std::string hi = add(half, {t});
  Layer sub;
  sub.kind = LayerKind::kSub;
  t = add(sub, {lo, hi});
  Layer mean;
  mean.kind = LayerKind::kReduceMean;
  mean.attrs["axes"].ints = {2, 3};
  mean.attrs["keepdims"].ints = {0};
  t = add(mean, {t});
  Layer div;
  div.kind = LayerKind::kDiv;
  div.weights = {{"d", {}, {3.0f}}};
  t = add(div, {t});
  g.outputs = {t};
  ASSERT_TRUE(g.Finalize().ok());
  auto bytes = SerializeOnnx(g);
  ASSERT_TRUE(bytes.ok()) << bytes.status().message();
  auto back = ParseOnnx(*bytes);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->layers.size(), g.layers.size() + 1);
  const TensorMap in = {{"x", SeededInput(g.inputs[0].shape, 3)}};
  auto want = Engine::Create(g).value()->RunAll(in);
  auto got = Engine::Create(*back).value()->RunAll(in);
  ASSERT_TRUE(want.ok() && got.ok());
  const Tensor& w = want->begin()->second;
  const Tensor& o = got->begin()->second;
  EXPECT_EQ(o.shape, (Shape{1, 2}));
  ExpectClose(o.data, w.data, 1e-6, "round trip");
}

// Executing a model in two or three pieces, passing the boundary tensors,
// gives exactly the output of one piece.
TEST(EngineSplit, PiecesEqualWhole) {
  for (const char* name : {"alexnet", "googlenet", "resnet50", "inception_bn", "mobilenet"}) {
    auto g = BuildZooModel(name, 5);
    ASSERT_TRUE(g.ok());
    auto e = Engine::Create(*g);
    ASSERT_TRUE(e.ok()) << e.status().message();
    const TensorMap input = {{"data", SeededInput(g->inputs[0].shape, 9)}};
    auto whole = (*e)->RunAll(input);
    ASSERT_TRUE(whole.ok()) << whole.status().message();
    const int n = static_cast<int>(g->layers.size());
    const std::string out = g->outputs[0];
    for (const std::vector<int>& cuts : {std::vector<int>{n / 2}, std::vector<int>{n / 3, 2 * n / 3}}) {
      TensorMap available = input;
      int begin = 0;
      for (size_t piece = 0; piece <= cuts.size(); ++piece) {
        const int end = piece < cuts.size() ? cuts[piece] : n;
        std::vector<int> layers;
        for (int k = begin; k < end; ++k) layers.push_back(k);
        // Boundary: every tensor a later layer reads.
        std::vector<std::string> wanted;
        for (int k = end; k < n; ++k)
          for (const auto& in : g->layers[k].inputs)
            if (g->FindLayer(in) >= begin && g->FindLayer(in) < end) wanted.push_back(in);
        if (end == n) wanted.push_back(out);
        auto part = (*e)->Run(layers, available, wanted);
        ASSERT_TRUE(part.ok()) << part.status().message();
        for (auto& [k, t] : *part) available[k] = t;
        begin = end;
      }
      // Pieces may cut a fused convolution + batch norm + ReLU apart, which
      // changes rounding only.
      const auto& a = available.at(out).data;
      const auto& b = whole->at(out).data;
      ASSERT_EQ(a.size(), b.size());
      double diff = 0, scale = 0;
      for (size_t i = 0; i < a.size(); ++i) diff = std::max(diff, double(std::fabs(a[i] - b[i]))), scale = std::max(scale, double(std::fabs(b[i])));
      EXPECT_LE(diff, 1e-5 * scale) << name << " in " << cuts.size() + 1 << " pieces";
    }
  }
}

TEST(EngineSplit, UnfusedPiecesAreBitIdentical) {
  auto g = BuildZooModel("resnet50", 5);
  auto e = Engine::Create(*g, EngineOptions{1, /*fuse=*/false});
  ASSERT_TRUE(e.ok());
  const TensorMap input = {{"data", SeededInput(g->inputs[0].shape, 9)}};
  auto whole = (*e)->RunAll(input);
  ASSERT_TRUE(whole.ok());
  const int n = static_cast<int>(g->layers.size()), cut = n / 2;
  std::vector<int> first, second;
  for (int k = 0; k < n; ++k) (k < cut ? first : second).push_back(k);
  std::vector<std::string> boundary;
  for (int k = cut; k < n; ++k)
    for (const auto& in : g->layers[k].inputs)
      if (g->FindLayer(in) >= 0 && g->FindLayer(in) < cut) boundary.push_back(in);
  auto a = (*e)->Run(first, input, boundary);
  ASSERT_TRUE(a.ok());
  auto b = (*e)->Run(second, *a, g->outputs);
  ASSERT_TRUE(b.ok()) << b.status().message();
  EXPECT_EQ(b->at(g->outputs[0]).data, whole->at(g->outputs[0]).data);
}

TEST(EngineFusion, FusedAndUnfusedAgree) {
  for (const char* name : {"resnet50", "mobilenet", "inception_bn"}) {
    auto g = BuildZooModel(name, 4);
    auto fused = Engine::Create(*g, EngineOptions{1, true});
    auto plain = Engine::Create(*g, EngineOptions{1, false});
    ASSERT_TRUE(fused.ok() && plain.ok());
    const TensorMap input = {{"data", SeededInput(g->inputs[0].shape, 2)}};
    const std::string logits = g->layers[g->layers.size() - 2].name;
    std::vector<int> all(g->layers.size());
    for (size_t k = 0; k < all.size(); ++k) all[k] = int(k);
    auto a = (*fused)->Run(all, input, {logits});
    auto b = (*plain)->Run(all, input, {logits});
    ASSERT_TRUE(a.ok() && b.ok());
    double diff = 0, scale = 0;
    for (size_t i = 0; i < a->at(logits).data.size(); ++i) {
      diff = std::max(diff, double(std::fabs(a->at(logits).data[i] - b->at(logits).data[i])));
      scale = std::max(scale, double(std::fabs(b->at(logits).data[i])));
    }
    EXPECT_LE(diff, 1e-5 * scale) << name;
  }
}

// The activations PyTorch's exports put after convolutions fold into them
// (oneDNN post-ops): Sigmoid, HardSwish, and x * Sigmoid(x) (SiLU) and
// x * HardSigmoid(x) as opsets before 14 write hard swish. Fused and
// unfused runs agree; a HardSigmoid of other constants, or a Mul whose
// second input is something else, does not fold.
TEST(EngineFusion, ConvolutionActivationsFold) {
  std::mt19937 rng(21);
  struct Case {
    const char* name;
    LayerKind act;
    float alpha;
    bool gated;  // followed by Mul(conv, act)
    size_t fused_members;  // 0: no fusion
  };
  for (const Case& c : {Case{"sigmoid", LayerKind::kSigmoid, 0, false, 2},
                        Case{"hardswish", LayerKind::kHardSwish, 0, false, 2},
                        Case{"silu", LayerKind::kSigmoid, 0, true, 3},
                        Case{"hardswish as x*hardsigmoid", LayerKind::kHardSigmoid, 1.0f / 6, true, 3},
                        Case{"x*hardsigmoid of other constants", LayerKind::kHardSigmoid, 0.2f, true, 0}}) {
    Graph g;
    g.inputs = {{"x", {1, 5, 9, 9}}};
    Layer conv;
    conv.name = "conv", conv.kind = LayerKind::kConv, conv.inputs = {"x"};
    conv.out_channels = 12, conv.kernel_h = conv.kernel_w = 3, conv.pad_top = conv.pad_left = conv.pad_bottom = conv.pad_right = 1;
    conv.weights = {{"w", {12, 5, 3, 3}, Random(12 * 5 * 9, rng)}, {"b", {12}, Random(12, rng)}};
    Layer act;
    act.name = "act", act.kind = c.act, act.inputs = {"conv"}, act.alpha = c.alpha;
    g.layers = {conv, act};
    if (c.gated) {
      Layer mul;
      mul.name = "mul", mul.kind = LayerKind::kMul, mul.inputs = {"act", "conv"};
      g.layers.push_back(mul);
    }
    g.outputs = {g.layers.back().name};
    ASSERT_TRUE(g.Finalize().ok()) << c.name;
    auto fused = Engine::Create(g, EngineOptions{1, true});
    auto plain = Engine::Create(g, EngineOptions{1, false});
    ASSERT_TRUE(fused.ok() && plain.ok()) << c.name;
    const auto groups = (*fused)->FusionGroups();
    EXPECT_EQ(groups.empty() ? 0 : groups[0].size(), c.fused_members) << c.name;
    const TensorMap in = {{"x", SeededInput(g.inputs[0].shape, 4)}};
    auto a = (*fused)->RunAll(in);
    auto b = (*plain)->RunAll(in);
    ASSERT_TRUE(a.ok() && b.ok()) << c.name;
    ExpectClose(a->begin()->second.data, b->begin()->second.data, 1e-5, c.name);
  }
}

// Blocked layouts between layers only skip reorders (exact copies), and
// pooling, concatenation and means compute the same sums in NHWC, so the
// outputs are bit-identical with and without them. oneDNN's LRN sums its
// window in another order in NHWC: AlexNet and GoogLeNet agree to rounding.
TEST(EngineLayouts, BlockedLayoutsChangeNoBit) {
  for (const char* name : {"alexnet", "googlenet", "resnet50", "inception_bn", "mobilenet"}) {
    auto g = BuildZooModel(name, 6);
    auto blocked = Engine::Create(*g, EngineOptions{1, true, true});
    auto plain = Engine::Create(*g, EngineOptions{1, true, false});
    ASSERT_TRUE(blocked.ok() && plain.ok());
    const TensorMap input = {{"data", SeededInput(g->inputs[0].shape, 4)}};
    auto a = (*blocked)->RunAll(input);
    auto b = (*plain)->RunAll(input);
    ASSERT_TRUE(a.ok() && b.ok());
    const bool lrn = std::string(name) == "alexnet" || std::string(name) == "googlenet";
    if (lrn) {
      ExpectClose(a->at(g->outputs[0]).data, b->at(g->outputs[0]).data, 1e-5, name);
    } else {
      EXPECT_EQ(a->at(g->outputs[0]).data, b->at(g->outputs[0]).data) << name;
    }
  }
}

// ShuffleNet's channel shuffle (Reshape, Transpose, Reshape) runs as one
// kernel, in NCHW and NHWC, and moves the same values as the three layers.
TEST(EngineFusion, ChannelShuffleIsOneKernel) {
  std::mt19937 rng(41);
  for (int groups : {2, 3}) {
    for (bool shuffle_perm : {true, false}) {
      Graph g;
      const Shape x = {2, 3, 5, 7};
      g.inputs = {{"x", x}};
      const int64_t C = 6 * groups;
      Layer conv;
      conv.kind = LayerKind::kConv, conv.out_channels = static_cast<int>(C), conv.kernel_h = conv.kernel_w = 1;
      conv.weights = {{"w", {C, 3, 1, 1}, Random(C * 3, rng)}, {"b", {C}, Random(C, rng)}};
      Add(g, conv, "conv", {"x"});
      Layer split;
      split.kind = LayerKind::kReshape, split.reshape_to = {2, groups, C / groups, 5, 7};
      Add(g, split, "split", {"conv"});
      Layer transpose;
      transpose.kind = LayerKind::kTranspose;
      transpose.perm = shuffle_perm ? Shape{0, 2, 1, 3, 4} : Shape{0, 1, 2, 4, 3};
      Add(g, transpose, "transpose", {"split"});
      Layer merge;
      merge.kind = LayerKind::kReshape, merge.reshape_to = shuffle_perm ? Shape{2, C, 5, 7} : Shape{2, C, 7, 5};
      Add(g, merge, "merge", {"transpose"});
      Layer half;
      half.kind = LayerKind::kSlice, half.axis = 1, half.slice_begin = 0, half.slice_end = C / 2;
      Add(g, half, "half", {"merge"});
      Layer out = conv;
      out.out_channels = 4;
      out.weights = {{"w", {4, C / 2, 1, 1}, Random(4 * C / 2, rng)}, {"b", {4}, Random(4, rng)}};
      Add(g, out, "out", {"half"});
      g.outputs = {"out", "merge"};
      ASSERT_TRUE(g.Finalize().ok());
      auto fused = Engine::Create(g, EngineOptions{1, true});
      auto plain = Engine::Create(g, EngineOptions{1, false, false});
      ASSERT_TRUE(fused.ok() && plain.ok());
      const auto groups_found = (*fused)->FusionGroups();
      EXPECT_EQ(groups_found.size(), shuffle_perm ? 1u : 0u) << groups;
      if (shuffle_perm && groups_found.size() == 1) {
        EXPECT_EQ(groups_found[0], (std::vector<int>{1, 2, 3}));
      }
      const TensorMap in = {{"x", SeededInput(x, 7)}};
      auto a = (*fused)->RunAll(in);
      auto b = (*plain)->RunAll(in);
      ASSERT_TRUE(a.ok() && b.ok());
      EXPECT_EQ(a->at("out").data, b->at("out").data) << groups;
      EXPECT_EQ(a->at("merge").data, b->at("merge").data) << groups;
      // Only "out" wanted: the shuffle's output stays channels last.
      std::vector<int> all(g.layers.size());
      for (size_t k = 0; k < all.size(); ++k) all[k] = static_cast<int>(k);
      auto run = (*fused)->Prepare(all, {"out"});
      ASSERT_TRUE(run.ok());
      auto c = (*fused)->Execute(**run, in);
      ASSERT_TRUE(c.ok());
      EXPECT_EQ(c->at("out").data, b->at("out").data) << groups;
      const int avx512 = static_cast<int>(dnnl::cpu_isa::avx512_core);
      if (shuffle_perm && (static_cast<int>(dnnl::get_effective_cpu_isa()) & avx512) == avx512) {
        EXPECT_EQ((*run)->channels_last_kernels(), 2) << groups;  // the shuffle and the slice
      }
    }
  }
}

// A batch norm that no convolution absorbs runs with the ReLU after it in
// one pass (DenseNet), unless the norm has another reader.
TEST(EngineFusion, BatchNormAndReluAfterAConcatFold) {
  std::mt19937 rng(43);
  for (bool second_reader : {false, true}) {
    Graph g;
    const Shape x = {1, 4, 6, 5};
    g.inputs = {{"x", x}};
    Layer conv;
    conv.kind = LayerKind::kConv, conv.out_channels = 6, conv.kernel_h = conv.kernel_w = 1;
    conv.weights = {{"w", {6, 4, 1, 1}, Random(24, rng)}, {"b", {6}, Random(6, rng)}};
    Add(g, conv, "conv", {"x"});
    Layer cat;
    cat.kind = LayerKind::kConcat, cat.axis = 1;
    Add(g, cat, "cat", {"conv", "x"});
    const Layer bn = RandomBatchNorm(10, rng);
    Add(g, bn, "bn", {"cat"});
    Layer relu;
    relu.kind = LayerKind::kRelu;
    Add(g, relu, "relu", {"bn"});
    Layer out = conv;
    out.weights = {{"w", {6, 10, 1, 1}, Random(60, rng)}, {"b", {6}, Random(6, rng)}};
    Add(g, out, "out", {"relu"});
    g.outputs = {"out"};
    if (second_reader) g.outputs.push_back("bn");
    ASSERT_TRUE(g.Finalize().ok());
    auto fused = Engine::Create(g, EngineOptions{1, true});
    auto plain = Engine::Create(g, EngineOptions{1, false, false});
    ASSERT_TRUE(fused.ok() && plain.ok());
    const auto groups = (*fused)->FusionGroups();
    EXPECT_EQ(groups.size(), second_reader ? 0u : 1u);
    if (!second_reader && groups.size() == 1) {
      EXPECT_EQ(groups[0], (std::vector<int>{2, 3}));
    }
    const TensorMap in = {{"x", SeededInput(x, 8)}};
    auto a = (*fused)->RunAll(in);
    auto b = (*plain)->RunAll(in);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a->at("out").data, b->at("out").data) << second_reader;
  }
}

// A zero Pad before an average pool without padding (PyTorch's export of
// count_include_pad) runs as one pool that pads; other pad values do not fold.
TEST(EngineFusion, ZeroPadBeforeAnAveragePoolFolds) {
  std::mt19937 rng(47);
  for (float value : {0.0f, 0.25f}) {
    for (bool ceil_mode : {false, true}) {
      Graph g;
      const Shape x = {2, 3, 7, 6};
      g.inputs = {{"x", x}};
      Layer pad;
      pad.name = "pad", pad.kind = LayerKind::kPad, pad.inputs = {"x"};
      pad.pad_top = 1, pad.pad_left = 2, pad.pad_bottom = 0, pad.pad_right = 1, pad.pad_value = value;
      Layer pool;
      pool.name = "pool", pool.kind = LayerKind::kAvgPool, pool.inputs = {"pad"};
      pool.kernel_h = pool.kernel_w = 3, pool.stride_h = pool.stride_w = 2, pool.ceil_mode = ceil_mode;
      g.layers = {pad, pool};
      g.outputs = {"pool"};
      ASSERT_TRUE(g.Finalize().ok());
      auto fused = Engine::Create(g, EngineOptions{1, true});
      auto plain = Engine::Create(g, EngineOptions{1, false, false});
      ASSERT_TRUE(fused.ok() && plain.ok());
      EXPECT_EQ((*fused)->FusionGroups().size(), value == 0.0f ? 1u : 0u);
      const TensorMap in = {{"x", {x, Random(ElementCount(x), rng)}}};
      auto a = (*fused)->RunAll(in);
      auto b = (*plain)->RunAll(in);
      ASSERT_TRUE(a.ok() && b.ok());
      ExpectClose(a->at("pool").data, b->at("pool").data, 1e-6, "pad " + std::to_string(value));
    }
  }
}

// Between convolutions that pick NHWC, pooling (ceil mode, dilation, a
// divisor that counts padding), concatenation, slices, batch norm, means,
// a broadcast channel scale, Pad and LRN run channels last; the outputs equal
// those of the plain run, bit for bit (LRN: to rounding).
TEST(EngineLayouts, ChannelsLastKernelsEqualPlain) {
  std::mt19937 rng(31);
  for (const Shape& x : {Shape{1, 3, 11, 9}, Shape{2, 4, 8, 13}}) {
    Graph g;
    g.inputs = {{"x", x}};
    auto conv = [&](int in_c, int out_c, int k) {
      Layer l;
      l.kind = LayerKind::kConv, l.out_channels = out_c, l.kernel_h = l.kernel_w = k;
      l.pad_top = l.pad_left = l.pad_bottom = l.pad_right = k / 2;
      l.weights = {{"w", {out_c, in_c, k, k}, Random(int64_t(out_c) * in_c * k * k, rng)}, {"b", {out_c}, Random(out_c, rng)}};
      return l;
    };
    const int c = static_cast<int>(x[1]);
    Add(g, conv(c, 8, 3), "c1", {"x"});
    Add(g, conv(c, 5, 1), "c2", {"x"});
    Layer cat;
    cat.kind = LayerKind::kConcat, cat.axis = 1;
    Add(g, cat, "cat", {"c1", "c2"});
    Layer slice;
    slice.kind = LayerKind::kSlice, slice.axis = 1, slice.slice_begin = 2, slice.slice_end = 11;
    Add(g, slice, "slice", {"cat"});
    const Layer bn = RandomBatchNorm(9, rng);
    Add(g, bn, "bn", {"slice"});
    Layer gap;
    gap.kind = LayerKind::kGlobalAvgPool;
    Add(g, gap, "gap", {"bn"});
    Layer mul;
    mul.kind = LayerKind::kMul;
    Add(g, mul, "scaled", {"bn", "gap"});
    Layer max_pool;
    max_pool.kind = LayerKind::kMaxPool, max_pool.kernel_h = max_pool.kernel_w = 2, max_pool.stride_h = max_pool.stride_w = 2;
    max_pool.dilation_h = max_pool.dilation_w = 2, max_pool.ceil_mode = true;
    Add(g, max_pool, "max", {"scaled"});
    Layer pad;
    pad.kind = LayerKind::kPad, pad.pad_top = 1, pad.pad_left = 2, pad.pad_right = 1, pad.pad_value = 0.5f;
    Add(g, pad, "padded", {"scaled"});
    Layer avg_pool;
    avg_pool.kind = LayerKind::kAvgPool, avg_pool.kernel_h = avg_pool.kernel_w = 3, avg_pool.stride_h = avg_pool.stride_w = 2;
    avg_pool.pad_top = avg_pool.pad_left = avg_pool.pad_bottom = avg_pool.pad_right = 1;
    avg_pool.ceil_mode = true, avg_pool.count_include_pad = true;
    Add(g, avg_pool, "avg", {"padded"});
    Layer lrn;
    lrn.kind = LayerKind::kLrn, lrn.lrn_size = 3, lrn.lrn_alpha = 0.5f;
    Add(g, lrn, "lrn", {"cat"});
    Layer plane_scale;  // a rank-3 operand: its bytes differ in NHWC, so this Mul runs plain
    plane_scale.kind = LayerKind::kMul;
    Add(g, conv(c, 8, 3), "c3", {"x"});
    Add(g, plane_scale, "planes", {"c3", "plane"});
    g.inputs.push_back({"plane", {8, x[2], x[3]}});
    Add(g, conv(8, 4, 1), "out_planes", {"planes"});
    Add(g, conv(9, 4, 1), "out_max", {"max"});
    Add(g, conv(9, 4, 1), "out_avg", {"avg"});
    Add(g, conv(13, 4, 1), "out_lrn", {"lrn"});
    g.outputs = {"out_max", "out_avg", "out_lrn", "out_planes"};
    ASSERT_TRUE(g.Finalize().ok());
    auto blocked = Engine::Create(g, EngineOptions{1, true, true});
    auto plain = Engine::Create(g, EngineOptions{1, true, false});
    ASSERT_TRUE(blocked.ok() && plain.ok());
    std::vector<int> all(g.layers.size());
    for (size_t k = 0; k < all.size(); ++k) all[k] = static_cast<int>(k);
    auto run = (*blocked)->Prepare(all, g.outputs);
    ASSERT_TRUE(run.ok());
    const TensorMap in = {{"x", SeededInput(x, 5)}, {"plane", SeededInput({8, x[2], x[3]}, 6)}};
    auto a = (*blocked)->Execute(**run, in);
    auto b = (*plain)->RunAll(in);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a->at("out_max").data, b->at("out_max").data) << ShapeToString(x);
    EXPECT_EQ(a->at("out_avg").data, b->at("out_avg").data) << ShapeToString(x);
    EXPECT_EQ(a->at("out_planes").data, b->at("out_planes").data) << ShapeToString(x);
    ExpectClose(a->at("out_lrn").data, b->at("out_lrn").data, 1e-5, "lrn " + ShapeToString(x));
    // Convolutions compute in NHWC (oneDNN's choice on AVX-512, asked for
    // without it), so the kernels between them run channels last.
    EXPECT_EQ((*run)->channels_last_kernels(), 9) << ShapeToString(x);  // all but the convolutions and "planes"
  }
}

// Winograd convolutions (nChw16c inside), one after another and before a
// direct one, with channels-last kernels between them, read and write
// NHWC: the same bits as plain NCHW.
TEST(EngineLayouts, WinogradConvolutionsKeepChannelsLast) {
  std::mt19937 rng(41);
  const Shape x = {1, 64, 16, 16};
  Graph g;
  g.inputs = {{"x", x}};
  Add(g, Conv3x3(64, 64, rng), "c0", {"x"});
  Layer relu;
  relu.kind = LayerKind::kRelu;
  Add(g, relu, "r0", {"c0"});
  Add(g, Conv3x3(64, 48, rng), "w1", {"r0"});  // Winograd, its ReLU fused
  Add(g, relu, "r1", {"w1"});
  Layer cat;
  cat.kind = LayerKind::kConcat, cat.axis = 1;
  Add(g, cat, "cat", {"r1", "r0"});
  Layer pool;
  pool.kind = LayerKind::kMaxPool, pool.kernel_h = pool.kernel_w = 2, pool.stride_h = pool.stride_w = 2;
  Add(g, pool, "pool", {"cat"});
  Add(g, Conv3x3(112, 16, rng), "out", {"pool"});
  g.outputs = {"out"};
  ASSERT_TRUE(g.Finalize().ok());
  auto blocked = Engine::Create(g, EngineOptions{1, true, true});
  auto plain = Engine::Create(g, EngineOptions{1, true, false});
  EngineOptions direct_only;
  direct_only.winograd = false;
  auto direct = Engine::Create(g, direct_only);
  ASSERT_TRUE(blocked.ok() && plain.ok() && direct.ok());
  std::vector<int> all(g.layers.size());
  for (size_t k = 0; k < all.size(); ++k) all[k] = static_cast<int>(k);
  auto run = (*blocked)->Prepare(all, g.outputs);
  ASSERT_TRUE(run.ok());
  const TensorMap in = {{"x", SeededInput(x, 7)}};
  auto a = (*blocked)->Execute(**run, in);
  auto b = (*plain)->RunAll(in);
  auto c = (*direct)->RunAll(in);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->at("out").data, b->at("out").data);
  ExpectClose(a->at("out").data, c->at("out").data, 1e-4, "winograd against direct");
  EXPECT_EQ((*run)->channels_last_kernels(), 2);  // the concat and the pool
}

// Buffers are reused from one Run to the next and Runs may overlap in
// threads: neither may change a result.
// Two threads running one engine (and so each kernel) at once, with 1 and 2
// engine threads each (XNNPACK's operators hold the tensors' addresses from
// setup to run; under IONN_BACKEND=xnnpack they run here), get exactly what
// one run alone gets.
TEST(EngineReuse, RepeatedAndConcurrentRunsAgree) {
  auto g = BuildZooModel("mobilenet", 8);
  for (int engine_threads : {1, 2}) {
    auto e = Engine::Create(*g, EngineOptions{engine_threads});
    ASSERT_TRUE(e.ok());
    const Engine& engine = **e;
    const TensorMap a = {{"data", SeededInput(g->inputs[0].shape, 1)}}, b = {{"data", SeededInput(g->inputs[0].shape, 2)}};
    const std::string out = g->outputs[0];
    const std::vector<float> want_a = engine.RunAll(a)->at(out).data, want_b = engine.RunAll(b)->at(out).data;
    ASSERT_NE(want_a, want_b);
    std::vector<int> bad(2, 0);
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 4; ++i) {
          const bool use_a = (i + t) % 2 == 0;
          auto r = engine.RunAll(use_a ? a : b);
          if (!r.ok() || r->at(out).data != (use_a ? want_a : want_b)) ++bad[t];
        }
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(bad, (std::vector<int>{0, 0})) << engine_threads << " engine threads";
  }
}

TEST(EngineSplit, MissingBoundaryTensorIsAnError) {
  auto g = BuildZooModel("alexnet", 1);
  auto e = Engine::Create(*g);
  ASSERT_TRUE(e.ok());
  auto r = (*e)->Run({4}, {}, {"conv2"});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("reads tensor 'pool1'"), std::string::npos) << r.status().message();
  auto bad = (*e)->Run({0}, {{"data", Tensor{{1, 3, 10, 10}, std::vector<float>(300)}}}, {"conv1"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("expected [1,3,227,227]"), std::string::npos);
}

}  // namespace
}  // namespace ionn
