// Softmax over one axis, or over all axes from `axis` on (ONNX opset < 13).
#include <algorithm>
#include <cmath>

#include "../kernel.h"

namespace ionn {
namespace {

class SoftmaxKernel : public Kernel {
 public:
  SoftmaxKernel(const Layer& l, const Shape& x) {
    const int rank = static_cast<int>(x.size());
    const int axis = l.axis < 0 ? l.axis + rank : l.axis;
    outer_ = 1, dim_ = 1, inner_ = 1;
    for (int d = 0; d < axis; ++d) outer_ *= x[d];
    if (l.softmax_coerce_2d) {
      for (int d = axis; d < rank; ++d) dim_ *= x[d];
    } else {
      dim_ = x[axis];
      for (int d = axis + 1; d < rank; ++d) inner_ *= x[d];
    }
  }
  void Run(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream&) const override {
    for (int64_t o = 0; o < outer_; ++o) {
      for (int64_t i = 0; i < inner_; ++i) {
        const float* x = in[0]->data.data() + o * dim_ * inner_ + i;
        float* y = out->data.data() + o * dim_ * inner_ + i;
        float mx = x[0];
        for (int64_t d = 1; d < dim_; ++d) mx = std::max(mx, x[d * inner_]);
        double sum = 0;
        for (int64_t d = 0; d < dim_; ++d) sum += (y[d * inner_] = std::exp(x[d * inner_] - mx));
        const float inv = static_cast<float>(1.0 / sum);
        for (int64_t d = 0; d < dim_; ++d) y[d * inner_] *= inv;
      }
    }
  }

 private:
  int64_t outer_, dim_, inner_;
};

}  // namespace

std::unique_ptr<Kernel> MakeSoftmaxKernel(Layer& layer, const std::vector<Shape>& in, const KernelContext&) {
  return std::make_unique<SoftmaxKernel>(layer, in[0]);
}

}  // namespace ionn
