// LayerNormalization (src/graph/ops/layer_norm.cc): x as [rows, n], n the
// normalized elements; per row, the mean and the variance around it (two
// passes, in double), then y = (x - mean) * rstd * scale + B in one pass.
#include <cmath>
#include <vector>

#include "../kernel.h"

namespace ionn {
namespace {

IONN_VECTOR_CLONES void NormalizeRow(const float* x, float* y, const float* scale, const float* bias, int64_t n,
                                     float mean, float rstd) {
  if (bias) {
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - mean) * rstd * scale[i] + bias[i];
  } else {
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - mean) * rstd * scale[i];
  }
}

IONN_VECTOR_CLONES double RowSum(const float* x, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += x[i];
  return s;
}

IONN_VECTOR_CLONES double RowSquares(const float* x, int64_t n, double mean) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = x[i] - mean;
    s += d * d;
  }
  return s;
}

class LayerNormKernel : public Kernel {
 public:
  LayerNormKernel(Layer& l, const Shape& x) {
    const int64_t axis = l.attrs.at("axis").ints[0];
    n_ = 1;
    for (size_t d = axis; d < x.size(); ++d) n_ *= x[d];
    rows_ = ElementCount(x) / n_;
    epsilon_ = l.attrs.at("epsilon").floats[0];
    scale_ = std::move(l.weights[0].data);
    if (l.weights.size() > 1) bias_ = std::move(l.weights[1].data);
  }
  void Run(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream&) const override {
    const float* x = in[0]->data.data();
    float* y = out->data.data();
    const int64_t rows = rows_, n = n_;
#pragma omp parallel for if (rows * n > 65536 && rows > 1)
    for (int64_t r = 0; r < rows; ++r) {
      const float* xr = x + r * n;
      const double mean = RowSum(xr, n) / static_cast<double>(n);
      const double var = RowSquares(xr, n, mean) / static_cast<double>(n);
      const float rstd = static_cast<float>(1.0 / std::sqrt(var + epsilon_));
      NormalizeRow(xr, y + r * n, scale_.data(), bias_.empty() ? nullptr : bias_.data(), n, static_cast<float>(mean),
                   rstd);
    }
  }

 private:
  int64_t rows_ = 1, n_ = 1;
  float epsilon_ = 0;
  std::vector<float> scale_, bias_;
};

std::unique_ptr<Kernel> MakeLayerNormKernel(Layer& l, const std::vector<Shape>& in, const KernelContext&) {
  return std::make_unique<LayerNormKernel>(l, in[0]);
}

}  // namespace

extern const KernelEntry kLayerNormKernel;
const KernelEntry kLayerNormKernel = {MakeLayerNormKernel, nullptr};

}  // namespace ionn
