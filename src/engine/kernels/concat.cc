// Concatenation along any axis: contiguous block copies (per pixel, when
// 4-D tensors concatenate channels in NHWC).
#include <cstring>

#include "../kernel.h"

namespace ionn {
namespace {

class ConcatKernel : public Kernel {
 public:
  ConcatKernel(const Layer& l, const std::vector<Shape>& in) {
    const int rank = static_cast<int>(in[0].size());
    const int axis = l.axis < 0 ? l.axis + rank : l.axis;
    plain_ = Blocks(in, axis);
    if (rank == 4) {
      std::vector<Shape> cl;
      for (const Shape& s : in) cl.push_back(ChannelsLastShape(s));
      cl_ = Blocks(cl, ChannelsLastAxis(axis));
    }
  }
  void Run(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream&) const override { Copy(plain_, in, out); }
  bool channels_last() const override { return !cl_.chunk.empty(); }
  void RunChannelsLast(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream&) const override {
    Copy(cl_, in, out);
  }

 private:
  struct Layout {
    int64_t outer = 1;           // blocks per input
    std::vector<int64_t> chunk;  // per input: floats per block
  };
  static Layout Blocks(const std::vector<Shape>& in, int axis) {
    Layout b;
    for (int d = 0; d < axis; ++d) b.outer *= in[0][d];
    for (const Shape& s : in) {
      int64_t inner = 1;
      for (size_t d = axis; d < s.size(); ++d) inner *= s[d];
      b.chunk.push_back(inner);
    }
    return b;
  }
  static void Copy(const Layout& b, const std::vector<const Tensor*>& in, Tensor* out) {
    int64_t row = 0;
    for (int64_t c : b.chunk) row += c;
    float* dst = out->data.data();
#pragma omp parallel for if (b.outer * row > 65536)
    for (int64_t o = 0; o < b.outer; ++o) {
      float* d = dst + o * row;
      for (size_t i = 0; i < in.size(); ++i) {
        std::memcpy(d, in[i]->data.data() + o * b.chunk[i], b.chunk[i] * sizeof(float));
        d += b.chunk[i];
      }
    }
  }

  Layout plain_, cl_;
};

}  // namespace

std::unique_ptr<Kernel> MakeConcatKernel(Layer& layer, const std::vector<Shape>& in, const KernelContext&) {
  return std::make_unique<ConcatKernel>(layer, in);
}

}  // namespace ionn
