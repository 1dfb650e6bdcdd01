// Concat of computed tensors and constants (src/graph/ops/concat_constants.cc),
// plain layout: per index before the axis, each piece's block in order.
#include <algorithm>
#include <vector>

#include "../kernel.h"

namespace ionn {
namespace {

class ConcatConstantsKernel : public Kernel {
 public:
  ConcatConstantsKernel(Layer& l, const std::vector<Shape>& in) : pieces_(l.attrs.at("pieces").ints) {
    const int64_t a = l.attrs.at("axis").ints[0];
    for (Weight& w : l.weights) constants_.push_back(std::move(w.data));
    for (int64_t p : pieces_) {
      const Shape& s = p >= 0 ? in[p] : l.weights[-1 - p].shape;
      blocks_.push_back(ElementCount(Shape(s.begin() + a, s.end())));
      outer_ = ElementCount(Shape(s.begin(), s.begin() + a));
    }
  }
  void Run(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream&) const override {
    float* y = out->data.data();
    for (int64_t o = 0; o < outer_; ++o) {
      for (size_t k = 0; k < pieces_.size(); ++k) {
        const int64_t p = pieces_[k];
        const float* from = (p >= 0 ? in[p]->data.data() : constants_[-1 - p].data()) + o * blocks_[k];
        y = std::copy(from, from + blocks_[k], y);
      }
    }
  }

 private:
  std::vector<int64_t> pieces_, blocks_;
  std::vector<std::vector<float>> constants_;
  int64_t outer_ = 1;
};

std::unique_ptr<Kernel> MakeConcatConstantsKernel(Layer& l, const std::vector<Shape>& in, const KernelContext&) {
  return std::make_unique<ConcatConstantsKernel>(l, in);
}

}  // namespace

extern const KernelEntry kConcatConstantsKernel;
const KernelEntry kConcatConstantsKernel = {MakeConcatConstantsKernel, nullptr};

}  // namespace ionn
