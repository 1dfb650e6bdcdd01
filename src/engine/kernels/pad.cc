// Pad (constant mode) of the H and W axes of NCHW: each plane copied into a
// larger one filled with the pad value (Inception-v3's explicit padding in
// front of an average pool that counts it).
#include <algorithm>
#include <cstring>

#include "../kernel.h"

namespace ionn {
namespace {

class PadKernel : public Kernel {
 public:
  PadKernel(const Layer& l, const Shape& x)
      : planes_(x[0] * x[1]), h_(x[2]), w_(x[3]), top_(l.pad_top), left_(l.pad_left), value_(l.pad_value) {
    oh_ = h_ + l.pad_top + l.pad_bottom, ow_ = w_ + l.pad_left + l.pad_right;
  }
  void Run(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream&) const override {
    const float* x = in[0]->data.data();
    float* y = out->data.data();
#pragma omp parallel for if (planes_ * oh_ * ow_ > 65536)
    for (int64_t p = 0; p < planes_; ++p) {
      float* plane = y + p * oh_ * ow_;
      std::fill(plane, plane + oh_ * ow_, value_);
      for (int64_t r = 0; r < h_; ++r) {
        std::memcpy(plane + (r + top_) * ow_ + left_, x + (p * h_ + r) * w_, w_ * sizeof(float));
      }
    }
  }

 private:
  int64_t planes_, h_, w_, top_, left_, oh_ = 0, ow_ = 0;
  float value_;
};

}  // namespace

std::unique_ptr<Kernel> MakePadKernel(Layer& layer, const std::vector<Shape>& in, const KernelContext&) {
  return std::make_unique<PadKernel>(layer, in[0]);
}

}  // namespace ionn
