// Slice along one axis, step 1 (ONNX Split becomes one Slice per part):
// for every index of the axes before it, one contiguous block.
#include <cstring>

#include "../kernel.h"

namespace ionn {
namespace {

class SliceKernel : public Kernel {
 public:
  SliceKernel(const Layer& l, const Shape& x) {
    outer_ = 1, inner_ = 1;
    for (int d = 0; d < l.axis; ++d) outer_ *= x[d];
    for (size_t d = l.axis + 1; d < x.size(); ++d) inner_ *= x[d];
    in_row_ = x[l.axis] * inner_;
    out_row_ = (l.slice_end - l.slice_begin) * inner_;
    offset_ = l.slice_begin * inner_;
  }
  void Run(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream&) const override {
    const float* x = in[0]->data.data();
    float* y = out->data.data();
    for (int64_t o = 0; o < outer_; ++o) {
      std::memcpy(y + o * out_row_, x + o * in_row_ + offset_, out_row_ * sizeof(float));
    }
  }

 private:
  int64_t outer_, inner_, in_row_, out_row_, offset_;
};

}  // namespace

std::unique_ptr<Kernel> MakeSliceKernel(Layer& layer, const std::vector<Shape>& in, const KernelContext&) {
  return std::make_unique<SliceKernel>(layer, in[0]);
}

}  // namespace ionn
