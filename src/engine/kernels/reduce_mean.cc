// ReduceMean over the spatial axes of NCHW, and GlobalAveragePool: one mean per channel plane, kept
// as [N, C, 1, 1] or [N, C] (the same values in the same order, in NCHW
// and in NHWC).
#include <algorithm>
#include <vector>

#include "../kernel.h"

namespace ionn {
namespace {

// sum[c] += x[i * C + c] over `rows` pixels of C channels.
IONN_VECTOR_CLONES void AccumulatePixels(const float* x, double* sum, int64_t rows, int64_t C) {
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t c = 0; c < C; ++c) sum[c] += x[i * C + c];
  }
}

class ReduceMeanKernel : public Kernel {
 public:
  explicit ReduceMeanKernel(const Shape& x) : images_(x[0]), channels_(x[1]), planes_(x[0] * x[1]), plane_(x[2] * x[3]) {}
  void Run(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream&) const override {
    const float* x = in[0]->data.data();
    float* y = out->data.data();
    const int64_t planes = planes_, plane = plane_;
#pragma omp parallel for if (planes * plane > 65536)
    for (int64_t p = 0; p < planes; ++p) {
      double sum = 0;
      for (int64_t i = 0; i < plane; ++i) sum += x[p * plane + i];
      y[p] = static_cast<float>(sum / plane);
    }
  }
  bool channels_last() const override { return true; }
  void RunChannelsLast(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream&) const override {
    const int64_t C = channels_, plane = plane_;
    std::vector<double> sum(C);
    for (int64_t n = 0; n < images_; ++n) {
      const float* x = in[0]->data.data() + n * plane * C;
      std::fill(sum.begin(), sum.end(), 0.0);
      AccumulatePixels(x, sum.data(), plane, C);
      float* y = out->data.data() + n * C;
      for (int64_t c = 0; c < C; ++c) y[c] = static_cast<float>(sum[c] / plane);
    }
  }

 private:
  int64_t images_, channels_, planes_, plane_;
};

}  // namespace

std::unique_ptr<Kernel> MakeReduceMeanKernel(Layer&, const std::vector<Shape>& in, const KernelContext&) {
  return std::make_unique<ReduceMeanKernel>(in[0]);
}

}  // namespace ionn
