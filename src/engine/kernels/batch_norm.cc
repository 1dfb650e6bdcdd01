// Batch normalization and Caffe's Scale at inference: one multiply-add per
// element with per-channel factors folded at creation, in NCHW or NHWC.
#include <cmath>

#include "../kernel.h"

namespace ionn {
namespace {

class BatchNormKernel : public Kernel {
 public:
  BatchNormKernel(Layer& l, const Shape& x) : x_(x) {
    const auto &gamma = l.weights[0].data, &beta = l.weights[1].data, &mean = l.weights[2].data, &var = l.weights[3].data;
    scale_.resize(gamma.size());
    shift_.resize(gamma.size());
    for (size_t c = 0; c < gamma.size(); ++c) {
      scale_[c] = gamma[c] / std::sqrt(var[c] + l.epsilon);
      shift_[c] = beta[c] - mean[c] * scale_[c];
    }
    l.weights.clear();
  }
  void Run(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream&) const override {
    const int64_t n = x_[0], c = x_[1], inner = ElementCount(x_) / (n * c);
    const float* src = in[0]->data.data();
    float* dst = out->data.data();
#pragma omp parallel for if (n * c * inner > 65536)
    for (int64_t p = 0; p < n * c; ++p) {
      const float a = scale_[p % c], b = shift_[p % c];
      const float* s = src + p * inner;
      float* d = dst + p * inner;
      for (int64_t i = 0; i < inner; ++i) d[i] = s[i] * a + b;
    }
  }
  bool channels_last() const override { return x_.size() == 4; }
  void RunChannelsLast(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream&) const override {
    const int64_t c = x_[1], pixels = x_[0] * x_[2] * x_[3];
    const float* src = in[0]->data.data();
    float* dst = out->data.data();
    const float* a = scale_.data();
    const float* b = shift_.data();
#pragma omp parallel for if (pixels * c > 65536)
    for (int64_t p = 0; p < pixels; ++p) {
      for (int64_t i = 0; i < c; ++i) dst[p * c + i] = src[p * c + i] * a[i] + b[i];
    }
  }

 private:
  Shape x_;
  std::vector<float> scale_, shift_;
};

}  // namespace

std::unique_ptr<Kernel> MakeBatchNormKernel(Layer& layer, const std::vector<Shape>& in, const KernelContext&) {
  return std::make_unique<BatchNormKernel>(layer, in[0]);
}

}  // namespace ionn
