// InstanceNormalization (src/graph/ops/instance_norm.cc): per plane (sample
// and channel, NCHW), the mean and the population variance in double, then
// one pass that writes scale * (x - mean) / sqrt(var + epsilon) + B.
#include <cmath>

#include "../kernel.h"

namespace ionn {
namespace {

class InstanceNormKernel : public Kernel {
 public:
  InstanceNormKernel(const Layer& l, const Shape& x)
      : channels_(x[1]), planes_(x[0] * x[1]), plane_(ElementCount(x) / (x[0] * x[1])),
        epsilon_(l.attrs.at("epsilon").floats[0]), scale_(l.weights[0].data), bias_(l.weights[1].data) {}
  void Run(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream&) const override {
    const float* x = in[0]->data.data();
    float* y = out->data.data();
#pragma omp parallel for if (planes_ * plane_ > 65536)
    for (int64_t p = 0; p < planes_; ++p) {
      const float* src = x + p * plane_;
      float* dst = y + p * plane_;
      double sum = 0;
      for (int64_t i = 0; i < plane_; ++i) sum += src[i];
      const double mean = sum / static_cast<double>(plane_);
      double squares = 0;
      for (int64_t i = 0; i < plane_; ++i) squares += (src[i] - mean) * (src[i] - mean);
      const double var = squares / static_cast<double>(plane_);
      const int64_t c = p % channels_;
      const float a = static_cast<float>(scale_[c] / std::sqrt(var + epsilon_));
      const float b = static_cast<float>(bias_[c] - mean * a);
      for (int64_t i = 0; i < plane_; ++i) dst[i] = a * src[i] + b;
    }
  }

 private:
  int64_t channels_, planes_, plane_;
  double epsilon_;
  std::vector<float> scale_, bias_;
};

std::unique_ptr<Kernel> MakeInstanceNormKernel(Layer& layer, const std::vector<Shape>& in, const KernelContext&) {
  auto k = std::make_unique<InstanceNormKernel>(layer, in[0]);
  layer.weights.clear();
  return k;
}

}  // namespace

extern const KernelEntry kInstanceNormKernel;
const KernelEntry kInstanceNormKernel = {MakeInstanceNormKernel, nullptr};

}  // namespace ionn
