// StridedSlice (src/graph/ops/strided_slice.cc): the output in order, its
// last axis a strided run of the input.
#include <vector>

#include "../kernel.h"

namespace ionn {
namespace {

class StridedSliceKernel : public Kernel {
 public:
  StridedSliceKernel(const Layer& l, const Shape& x)
      : starts_(l.attrs.at("starts").ints), steps_(l.attrs.at("steps").ints), counts_(l.attrs.at("counts").ints) {
    strides_.assign(x.size(), 1);
    for (size_t d = x.size(); d-- > 1;) strides_[d - 1] = strides_[d] * x[d];
  }
  void Run(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream&) const override {
    const float* x = in[0]->data.data();
    float* y = out->data.data();
    const size_t rank = counts_.size();
    const int64_t last = counts_[rank - 1], step = steps_[rank - 1] * strides_[rank - 1];
    const int64_t rows = ElementCount(counts_) / last;
    std::vector<int64_t> at(rank, 0);  // the output coordinates of the row, but its last
    for (int64_t r = 0; r < rows; ++r) {
      int64_t base = 0;
      for (size_t d = 0; d < rank; ++d) base += (starts_[d] + at[d] * steps_[d]) * strides_[d];
      for (int64_t i = 0; i < last; ++i) *y++ = x[base + i * step];
      for (size_t d = rank - 1; d-- > 0;) {
        if (++at[d] < counts_[d]) break;
        at[d] = 0;
      }
    }
  }

 private:
  std::vector<int64_t> starts_, steps_, counts_, strides_;
};

std::unique_ptr<Kernel> MakeStridedSliceKernel(Layer& l, const std::vector<Shape>& in, const KernelContext&) {
  return std::make_unique<StridedSliceKernel>(l, in[0]);
}

}  // namespace

extern const KernelEntry kStridedSliceKernel;
const KernelEntry kStridedSliceKernel = {MakeStridedSliceKernel, nullptr};

}  // namespace ionn
