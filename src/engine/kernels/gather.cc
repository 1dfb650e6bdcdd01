// Gather with indices known at import (src/graph/ops/gather.cc): x as
// [outer, d, inner]; each index copies a block of `inner` values.
#include <algorithm>
#include <vector>

#include "../kernel.h"

namespace ionn {
namespace {

class GatherKernel : public Kernel {
 public:
  GatherKernel(const Layer& l, const Shape& x) : indices_(l.attrs.at("indices").ints) {
    const int64_t a = l.attrs.at("axis").ints[0];
    outer_ = ElementCount(Shape(x.begin(), x.begin() + a));
    d_ = x[a];
    inner_ = ElementCount(Shape(x.begin() + a + 1, x.end()));
  }
  void Run(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream&) const override {
    const float* x = in[0]->data.data();
    float* y = out->data.data();
    for (int64_t o = 0; o < outer_; ++o) {
      for (int64_t i : indices_) {
        const float* from = x + (o * d_ + i) * inner_;
        y = std::copy(from, from + inner_, y);
      }
    }
  }

 private:
  std::vector<int64_t> indices_;
  int64_t outer_ = 1, d_ = 1, inner_ = 1;
};

std::unique_ptr<Kernel> MakeGatherKernel(Layer& l, const std::vector<Shape>& in, const KernelContext&) {
  return std::make_unique<GatherKernel>(l, in[0]);
}

}  // namespace

extern const KernelEntry kGatherKernel;
const KernelEntry kGatherKernel = {MakeGatherKernel, nullptr};

}  // namespace ionn
