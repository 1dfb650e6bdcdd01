// ReLU and Clip (ReLU6), element-wise.
#include <algorithm>

#include "../kernel.h"

namespace ionn {
namespace {

class ActivationKernel : public Kernel {
 public:
  ActivationKernel(float lo, float hi) : lo_(lo), hi_(hi) {}
  bool elementwise() const override { return true; }
  void Run(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream&) const override {
    const float* x = in[0]->data.data();
    float* y = out->data.data();
    const int64_t n = static_cast<int64_t>(out->data.size());
#pragma omp parallel for if (n > 65536)
    for (int64_t i = 0; i < n; ++i) y[i] = std::min(std::max(x[i], lo_), hi_);
  }

 private:
  float lo_, hi_;
};

}  // namespace

std::unique_ptr<Kernel> MakeActivationKernel(Layer& layer, const std::vector<Shape>&, const KernelContext&) {
  // batch_norm.cc's fused ReLU clamps alike
  if (layer.kind == LayerKind::kRelu) return std::make_unique<ActivationKernel>(0.0f, 3.4e38f);
  return std::make_unique<ActivationKernel>(layer.clip_min, layer.clip_max);
}

}  // namespace ionn
