// Max and average pooling (global average pooling runs the per-plane mean
// kernel, reduce_mean.cc), ONNX semantics: ceil mode, and
// an average divisor that counts padding (count_include_pad) but never the
// part of a ceil-mode window past the padded input, as Caffe and onnxruntime.
#include <algorithm>
#include <limits>

#include "../kernel.h"

namespace ionn {
namespace {

class PoolingKernel : public Kernel {
 public:
  PoolingKernel(const Layer& l, const Shape& x) : l_(l), x_(x) {}
  void Run(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream&) const override {
    const int64_t planes = x_[0] * x_[1], H = x_[2], W = x_[3];
    const int64_t OH = l_.output_shape[2], OW = l_.output_shape[3];
    const bool is_max = l_.kind == LayerKind::kMaxPool;
    const float* src = in[0]->data.data();
    float* dst = out->data.data();
#pragma omp parallel for
    for (int64_t p = 0; p < planes; ++p) {
      const float* plane = src + p * H * W;
      for (int64_t oh = 0; oh < OH; ++oh) {
        const int64_t h0 = oh * l_.stride_h - l_.pad_top;
        const int64_t h_end = std::min<int64_t>(h0 + (l_.kernel_h - 1) * l_.dilation_h + 1, H + l_.pad_bottom);
        for (int64_t ow = 0; ow < OW; ++ow) {
          const int64_t w0 = ow * l_.stride_w - l_.pad_left;
          const int64_t w_end = std::min<int64_t>(w0 + (l_.kernel_w - 1) * l_.dilation_w + 1, W + l_.pad_right);
          float acc = is_max ? -std::numeric_limits<float>::infinity() : 0.0f;
          int64_t inside = 0;
          for (int64_t h = h0; h < h_end; h += l_.dilation_h) {
            if (h < 0 || h >= H) continue;
            for (int64_t w = w0; w < w_end; w += l_.dilation_w) {
              if (w < 0 || w >= W) continue;
              const float v = plane[h * W + w];
              acc = is_max ? std::max(acc, v) : acc + v;
              ++inside;
            }
          }
          if (!is_max) {
            const int64_t window = l_.count_include_pad ? (h_end - h0) * (w_end - w0) : inside;
            acc = window > 0 ? acc / static_cast<float>(window) : 0.0f;
          }
          dst[(p * OH + oh) * OW + ow] = acc;
        }
      }
    }
  }

 private:
  Layer l_;  // attributes only (pooling has no weights)
  Shape x_;
};

}  // namespace

std::unique_ptr<Kernel> MakePoolingKernel(Layer& layer, const std::vector<Shape>& in, const KernelContext&) {
  return std::make_unique<PoolingKernel>(layer, in[0]);
}

}  // namespace ionn
