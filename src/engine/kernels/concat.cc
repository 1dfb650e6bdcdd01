// Concatenation along any axis: contiguous block copies.
#include <cstring>

#include "../kernel.h"

namespace ionn {
namespace {

class ConcatKernel : public Kernel {
 public:
  ConcatKernel(const Layer& l, const std::vector<Shape>& in) {
    const int rank = static_cast<int>(in[0].size());
    const int axis = l.axis < 0 ? l.axis + rank : l.axis;
    outer_ = 1;
    for (int d = 0; d < axis; ++d) outer_ *= in[0][d];
    for (const Shape& s : in) {
      int64_t inner = 1;
      for (int d = axis; d < rank; ++d) inner *= s[d];
      chunk_.push_back(inner);
    }
  }
  void Run(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream&) const override {
    float* dst = out->data.data();
    for (int64_t o = 0; o < outer_; ++o) {
      for (size_t i = 0; i < in.size(); ++i) {
        std::memcpy(dst, in[i]->data.data() + o * chunk_[i], chunk_[i] * sizeof(float));
        dst += chunk_[i];
      }
    }
  }

 private:
  int64_t outer_ = 1;
  std::vector<int64_t> chunk_;
};

}  // namespace

std::unique_ptr<Kernel> MakeConcatKernel(Layer& layer, const std::vector<Shape>& in, const KernelContext&) {
  return std::make_unique<ConcatKernel>(layer, in);
}

}  // namespace ionn
