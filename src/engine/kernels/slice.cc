// Slice along one axis, step 1 (ONNX Split becomes one Slice per part):
// for every index of the axes before it, one contiguous block (per pixel,
// when a 4-D tensor in NHWC is sliced along channels).
#include <cstring>

#include "../kernel.h"

namespace ionn {
namespace {

class SliceKernel : public Kernel {
 public:
  SliceKernel(const Layer& l, const Shape& x) {
    plain_ = Rows(l, x, l.axis);
    if (x.size() == 4) cl_ = Rows(l, ChannelsLastShape(x), ChannelsLastAxis(l.axis)), has_cl_ = true;
  }
  void Run(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream&) const override { Copy(plain_, in, out); }
  bool channels_last() const override { return has_cl_; }
  void RunChannelsLast(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream&) const override {
    Copy(cl_, in, out);
  }

 private:
  struct Layout {
    int64_t outer = 1, in_row = 0, out_row = 0, offset = 0;
  };
  static Layout Rows(const Layer& l, const Shape& x, int axis) {
    Layout r;
    int64_t inner = 1;
    for (int d = 0; d < axis; ++d) r.outer *= x[d];
    for (size_t d = axis + 1; d < x.size(); ++d) inner *= x[d];
    r.in_row = x[axis] * inner;
    r.out_row = (l.slice_end - l.slice_begin) * inner;
    r.offset = l.slice_begin * inner;
    return r;
  }
  static void Copy(const Layout& r, const std::vector<const Tensor*>& in, Tensor* out) {
    const float* x = in[0]->data.data();
    float* y = out->data.data();
#pragma omp parallel for if (r.outer * r.out_row > 65536)
    for (int64_t o = 0; o < r.outer; ++o) {
      std::memcpy(y + o * r.out_row, x + o * r.in_row + r.offset, r.out_row * sizeof(float));
    }
  }

  Layout plain_, cl_;
  bool has_cl_ = false;
};

}  // namespace

std::unique_ptr<Kernel> MakeSliceKernel(Layer& layer, const std::vector<Shape>& in, const KernelContext&) {
  return std::make_unique<SliceKernel>(layer, in[0]);
}

}  // namespace ionn
