// Batch normalization and Caffe's Scale at inference: one multiply-add per
// element with per-channel factors folded at creation, in NCHW or NHWC; and
// with the ReLU that follows it (DenseNet's pre-activation), in the same pass.
#include <algorithm>
#include <cmath>

#include "../kernel.h"

namespace ionn {
namespace {

constexpr float kReluMax = 3.4e38f;  // as the ReLU kernel (activation.cc) clamps

// rows of `c` channels: dst = src * a + b per channel, then the ReLU.
IONN_VECTOR_CLONES void ScaleShift(const float* src, float* dst, const float* a, const float* b, int64_t rows, int64_t c,
                                   bool relu) {
  for (int64_t r = 0; r < rows; ++r, src += c, dst += c) {
    if (relu) {
      for (int64_t i = 0; i < c; ++i) dst[i] = std::min(std::max(src[i] * a[i] + b[i], 0.0f), kReluMax);
    } else {
      for (int64_t i = 0; i < c; ++i) dst[i] = src[i] * a[i] + b[i];
    }
  }
}

// As ScaleShift, one factor for a whole row.
IONN_VECTOR_CLONES void ScaleShiftPlane(const float* src, float* dst, float a, float b, int64_t n, bool relu) {
  if (relu) {
    for (int64_t i = 0; i < n; ++i) dst[i] = std::min(std::max(src[i] * a + b, 0.0f), kReluMax);
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i] = src[i] * a + b;
  }
}

class BatchNormKernel : public Kernel {
 public:
  BatchNormKernel(Layer& l, const Shape& x, bool relu) : x_(x), relu_(relu) {
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
      ScaleShiftPlane(src + p * inner, dst + p * inner, scale_[p % c], shift_[p % c], inner, relu_);
    }
  }
  bool channels_last() const override { return x_.size() == 4; }
  void RunChannelsLast(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream&) const override {
    const int64_t c = x_[1], pixels = x_[0] * x_[2] * x_[3];
    const float* src = in[0]->data.data();
    float* dst = out->data.data();
    const float* a = scale_.data();
    const float* b = shift_.data();
    constexpr int64_t kRows = 64;  // pixels per call
#pragma omp parallel for if (pixels * c > 65536)
    for (int64_t p = 0; p < pixels; p += kRows) {
      ScaleShift(src + p * c, dst + p * c, a, b, std::min(kRows, pixels - p), c, relu_);
    }
  }

 private:
  Shape x_;
  bool relu_;
  std::vector<float> scale_, shift_;
};

}  // namespace

std::unique_ptr<Kernel> MakeBatchNormKernel(Layer& layer, const std::vector<Shape>& in, const KernelContext&) {
  return std::make_unique<BatchNormKernel>(layer, in[0], false);
}

std::unique_ptr<Kernel> MakeBatchNormReluKernel(Layer& layer, const Shape& in, const KernelContext&) {
  return std::make_unique<BatchNormKernel>(layer, in, true);
}

}  // namespace ionn
