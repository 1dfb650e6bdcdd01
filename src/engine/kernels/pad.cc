// Pad (constant mode) of the H and W axes of NCHW: each plane copied into a
// larger one filled with the pad value (Inception-v3's explicit padding in
// front of an average pool that counts it); in NHWC, each image's rows of
// pixels alike.
#include <algorithm>
#include <cstring>

#include "../kernel.h"

namespace ionn {
namespace {

class PadKernel : public Kernel {
 public:
  PadKernel(const Layer& l, const Shape& x)
      : images_(x[0]), channels_(x[1]), planes_(x[0] * x[1]), h_(x[2]), w_(x[3]), top_(l.pad_top), left_(l.pad_left),
        value_(l.pad_value) {
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
  bool channels_last() const override { return true; }
  void RunChannelsLast(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream&) const override {
    const int64_t C = channels_, out_row = ow_ * C, in_row = w_ * C;
    const float* x = in[0]->data.data();
    float* y = out->data.data();
#pragma omp parallel for if (images_ * oh_ * out_row > 65536)
    for (int64_t r = 0; r < images_ * oh_; ++r) {  // output rows
      const int64_t n = r / oh_, h = r % oh_ - top_;
      float* row = y + r * out_row;
      if (h < 0 || h >= h_) {
        std::fill(row, row + out_row, value_);
        continue;
      }
      std::fill(row, row + left_ * C, value_);
      std::memcpy(row + left_ * C, x + (n * h_ + h) * in_row, in_row * sizeof(float));
      std::fill(row + left_ * C + in_row, row + out_row, value_);
    }
  }

 private:
  int64_t images_, channels_, planes_, h_, w_, top_, left_, oh_ = 0, ow_ = 0;
  float value_;
};

}  // namespace

std::unique_ptr<Kernel> MakePadKernel(Layer& layer, const std::vector<Shape>& in, const KernelContext&) {
  return std::make_unique<PadKernel>(layer, in[0]);
}

}  // namespace ionn
