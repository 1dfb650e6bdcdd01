// The element-wise functions of src/graph/ops/unary.cc. Those oneDNN has
// (tanh, elu, exp, log, abs, sqrt, leaky ReLU, x * -1, soft ReLU, x^-1) run
// as its eltwise primitive over the tensor's elements; the others as our own
// loop (Pow too). Dense NHWC alike; our loops also run in blocked layouts, padding
// included, where the function keeps 0 at 0. A NaN input gives NaN (oneDNN's
// exp would give inf).
#include <algorithm>
#include <cmath>

#include "../kernel.h"

namespace ionn {
namespace {

float AttrOf(const Layer& l, const char* name) { return l.attrs.at(name).floats.at(0); }

class OneDnnUnaryKernel : public Kernel {
 public:
  OneDnnUnaryKernel(int64_t n, dnnl::algorithm algorithm, float alpha, float beta, const KernelContext& ctx)
      : cpu_(ctx.cpu) {
    const dnnl::memory::desc md({n}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::a);
    pd_ = dnnl::eltwise_forward::primitive_desc(
        dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_inference, algorithm, md, alpha, beta), cpu_);
    prim_ = dnnl::eltwise_forward(pd_);
  }
  const char* backend() const override { return "onednn"; }
  bool channels_last() const override { return true; }
  void Run(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream& stream) const override {
    const float* x = in[0]->data.data();
    float* y = out->data.data();
    dnnl::memory src(pd_.src_desc(), cpu_, const_cast<float*>(x));
    dnnl::memory dst(pd_.dst_desc(), cpu_, y);
    prim_.execute(stream, {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}});
    // oneDNN's jit clamps some inputs before its polynomial (exp of NaN
    // comes out inf on AVX2): NaN in, NaN out, as ONNX's functions.
    const int64_t n = static_cast<int64_t>(out->data.size());
#pragma omp parallel for if (n > 65536)
    for (int64_t i = 0; i < n; ++i) {
      if (x[i] != x[i]) y[i] = x[i];
    }
  }
  void RunChannelsLast(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream& stream) const override {
    Run(in, out, stream);
  }

 private:
  dnnl::engine cpu_;
  dnnl::eltwise_forward::primitive_desc pd_;
  dnnl::eltwise_forward prim_;
};

template <typename F>
class LoopKernel : public Kernel {
 public:
  explicit LoopKernel(F f) : f_(f), zero_at_zero_(f(0.0f) == 0.0f) {}
  bool elementwise() const override { return zero_at_zero_; }
  bool channels_last() const override { return true; }
  void Run(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream&) const override {
    const float* x = in[0]->data.data();
    float* y = out->data.data();
    const int64_t n = static_cast<int64_t>(out->data.size());
#pragma omp parallel for if (n > 65536)
    for (int64_t i = 0; i < n; ++i) y[i] = f_(x[i]);
  }
  void RunChannelsLast(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream& stream) const override {
    Run(in, out, stream);
  }

 private:
  F f_;
  bool zero_at_zero_;
};

template <typename F>
std::unique_ptr<Kernel> Loop(F f) {
  return std::make_unique<LoopKernel<F>>(f);
}

// erf in float without a library call, so that the loop vectorizes (libm's
// erff is scalar: GELU's Erf was a quarter of MaxViT's time): x P(x^2) /
// Q(x^2) on |x| <= 4, a rational least-squares fit to erf (relative error
// below 4e-7, 5 float ulps, on 230,000 points of [-6, 6] and tiny ones),
// +-1 past 4 (erf(4) rounds to 1 in float). NaN stays NaN.
inline float Erf(float x) {
  const float a = std::min(std::fabs(x), 4.0f), t = a * a;
  const float p = ((((2.044655098e-06f * t + 2.837433920e-04f) * t + 3.741368391e-03f) * t + 5.266631946e-02f) * t +
                   1.899128941e-01f) * t + 1.128379150e+00f;
  const float q = ((((3.797954358e-05f * t + 1.155689684e-03f) * t + 1.491909176e-02f) * t + 1.138898982e-01f) * t +
                   5.016387551e-01f) * t + 1.0f;
  return std::copysign(std::min(a * p / q, 1.0f), x);
}

IONN_VECTOR_CLONES void ErfRow(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = Erf(x[i]);
}

// A function applied by rows of a vectorized loop.
class RowKernel : public Kernel {
 public:
  explicit RowKernel(void (*row)(const float*, float*, int64_t)) : row_(row) {}
  bool elementwise() const override { return true; }  // keeps 0 at 0
  bool channels_last() const override { return true; }
  void Run(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream&) const override {
    const float* x = in[0]->data.data();
    float* y = out->data.data();
    const int64_t n = static_cast<int64_t>(out->data.size()), chunk = 16384, chunks = (n + chunk - 1) / chunk;
#pragma omp parallel for if (n > 65536)
    for (int64_t c = 0; c < chunks; ++c) row_(x + c * chunk, y + c * chunk, std::min(chunk, n - c * chunk));
  }
  void RunChannelsLast(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream& stream) const override {
    Run(in, out, stream);
  }

 private:
  void (*row_)(const float*, float*, int64_t);
};

std::unique_ptr<Kernel> MakeUnaryKernel(Layer& l, const std::vector<Shape>& in, const KernelContext& ctx) {
  using A = dnnl::algorithm;
  const int64_t n = ElementCount(in[0]);
  auto onednn = [&](A algorithm, float alpha, float beta) -> std::unique_ptr<Kernel> {
    return std::make_unique<OneDnnUnaryKernel>(n, algorithm, alpha, beta, ctx);
  };
  switch (l.kind) {
    case LayerKind::kTanh: return onednn(A::eltwise_tanh, 0, 0);
    case LayerKind::kLeakyRelu: return onednn(A::eltwise_relu, AttrOf(l, "alpha"), 0);
    case LayerKind::kElu: return onednn(A::eltwise_elu, AttrOf(l, "alpha"), 0);
    case LayerKind::kExp: return onednn(A::eltwise_exp, 0, 0);
    case LayerKind::kLog: return onednn(A::eltwise_log, 0, 0);
    case LayerKind::kNeg: return onednn(A::eltwise_linear, -1, 0);
    case LayerKind::kAbs: return onednn(A::eltwise_abs, 0, 0);
    case LayerKind::kSqrt: return onednn(A::eltwise_sqrt, 0, 0);
    case LayerKind::kReciprocal: return onednn(A::eltwise_pow, 1, -1);
    case LayerKind::kSoftplus: return onednn(A::eltwise_soft_relu, 0, 0);
    case LayerKind::kSelu: {
      const float alpha = AttrOf(l, "alpha"), gamma = AttrOf(l, "gamma");
      return Loop([alpha, gamma](float x) { return gamma * (x <= 0 ? alpha * std::expm1(x) : x); });
    }
    case LayerKind::kCelu: {
      const float alpha = AttrOf(l, "alpha");
      return Loop([alpha](float x) {
        return std::isnan(x) ? x : std::max(0.0f, x) + std::min(0.0f, alpha * std::expm1(x / alpha));
      });
    }
    case LayerKind::kThresholdedRelu: {
      const float alpha = AttrOf(l, "alpha");
      return Loop([alpha](float x) { return x > alpha ? x : 0.0f; });
    }
    case LayerKind::kErf: return std::make_unique<RowKernel>(ErfRow);
    case LayerKind::kSoftsign: return Loop([](float x) { return x / (1 + std::fabs(x)); });
    case LayerKind::kFloor: return Loop([](float x) { return std::floor(x); });
    case LayerKind::kCeil: return Loop([](float x) { return std::ceil(x); });
    case LayerKind::kPow: {
      const float e = AttrOf(l, "exponent");
      if (e == 1) return Loop([](float x) { return x; });
      if (e == 2) return Loop([](float x) { return x * x; });
      if (e == 3) return Loop([](float x) { return x * x * x; });
      return Loop([e](float x) { return std::pow(x, e); });
    }
    default: return nullptr;
  }
}

}  // namespace

#define IONN_UNARY_KERNEL(kind)           \
  extern const KernelEntry kind##Kernel;  \
  const KernelEntry kind##Kernel = {MakeUnaryKernel, nullptr};
IONN_UNARY_KERNEL(kTanh)
IONN_UNARY_KERNEL(kLeakyRelu)
IONN_UNARY_KERNEL(kElu)
IONN_UNARY_KERNEL(kSelu)
IONN_UNARY_KERNEL(kCelu)
IONN_UNARY_KERNEL(kThresholdedRelu)
IONN_UNARY_KERNEL(kExp)
IONN_UNARY_KERNEL(kLog)
IONN_UNARY_KERNEL(kNeg)
IONN_UNARY_KERNEL(kAbs)
IONN_UNARY_KERNEL(kSqrt)
IONN_UNARY_KERNEL(kReciprocal)
IONN_UNARY_KERNEL(kErf)
IONN_UNARY_KERNEL(kSoftplus)
IONN_UNARY_KERNEL(kSoftsign)
IONN_UNARY_KERNEL(kFloor)
IONN_UNARY_KERNEL(kCeil)
IONN_UNARY_KERNEL(kPow)  // src/graph/ops/pow.cc: x^e, e a constant
#undef IONN_UNARY_KERNEL

}  // namespace ionn
