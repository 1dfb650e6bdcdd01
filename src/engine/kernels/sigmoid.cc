// The sigmoid family, element-wise: Sigmoid (oneDNN's logistic, vectorized),
// HardSigmoid max(0, min(1, alpha*x + beta)) and HardSwish x * HardSigmoid(x)
// with alpha 1/6, beta 1/2.
#include <algorithm>

#include "../kernel.h"

namespace ionn {
namespace {

class SigmoidKernel : public Kernel {
 public:
  const char* backend() const override { return "onednn"; }
  SigmoidKernel(const Shape& x, const KernelContext& ctx) {
    const dnnl::memory::desc md({ElementCount(x)}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::a);
    pd_ = dnnl::eltwise_forward::primitive_desc(
        dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::eltwise_logistic, md), ctx.cpu);
    prim_ = dnnl::eltwise_forward(pd_);
    cpu_ = ctx.cpu;
  }
  void Run(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream& stream) const override {
    dnnl::memory src(pd_.src_desc(), cpu_, const_cast<float*>(in[0]->data.data()));
    dnnl::memory dst(pd_.dst_desc(), cpu_, out->data.data());
    prim_.execute(stream, {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}});
  }

 private:
  dnnl::eltwise_forward::primitive_desc pd_;
  dnnl::eltwise_forward prim_;
  dnnl::engine cpu_;
};

class HardSigmoidKernel : public Kernel {
 public:
  HardSigmoidKernel(float alpha, float beta, bool times_x) : alpha_(alpha), beta_(beta), times_x_(times_x) {}
  // HardSwish keeps 0 at 0, so it computes in any layout, padding included;
  // HardSigmoid does not (0 becomes beta).
  bool elementwise() const override { return times_x_; }
  void Run(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream&) const override {
    const float* x = in[0]->data.data();
    float* y = out->data.data();
    const int64_t n = static_cast<int64_t>(out->data.size());
    const float alpha = alpha_, beta = beta_;
    if (times_x_) {
#pragma omp parallel for simd if (n > 65536)
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] * std::min(std::max(alpha * x[i] + beta, 0.0f), 1.0f);
    } else {
#pragma omp parallel for simd if (n > 65536)
      for (int64_t i = 0; i < n; ++i) y[i] = std::min(std::max(alpha * x[i] + beta, 0.0f), 1.0f);
    }
  }

 private:
  float alpha_, beta_;
  bool times_x_;
};

}  // namespace

std::unique_ptr<Kernel> MakeSigmoidKernel(Layer& layer, const std::vector<Shape>& in, const KernelContext& ctx) {
  if (layer.kind == LayerKind::kSigmoid) return std::make_unique<SigmoidKernel>(in[0], ctx);
  if (layer.kind == LayerKind::kHardSwish) return std::make_unique<HardSigmoidKernel>(1.0f / 6, 0.5f, true);
  return std::make_unique<HardSigmoidKernel>(layer.alpha, layer.beta, false);
}

}  // namespace ionn
