// Transpose: output axis i is input axis perm[i] (ShuffleNet's channel
// shuffle moves [N, g, C/g, H, W] to [N, C/g, g, H, W]). Trailing axes that
// keep their order are copied as one contiguous block. And the channel
// shuffle that Reshape, this Transpose and Reshape compute together, run
// as one kernel, in NCHW or NHWC.
#include <algorithm>
#include <cstring>

#include "../kernel.h"

namespace ionn {
namespace {

class TransposeKernel : public Kernel {
 public:
  TransposeKernel(const Layer& l, const Shape& x) {
    const size_t rank = x.size();
    std::vector<int64_t> in_step(rank, 1);
    for (size_t d = rank - 1; d-- > 0;) in_step[d] = in_step[d + 1] * x[d + 1];
    // The longest run of trailing output axes that are the input's trailing
    // axes in order: one block.
    size_t keep = 0;
    while (keep < rank && l.perm[rank - 1 - keep] == static_cast<int64_t>(rank - 1 - keep)) ++keep;
    block_ = 1;
    for (size_t k = 0; k < keep; ++k) block_ *= x[rank - 1 - k];
    for (size_t d = 0; d + keep < rank; ++d) {
      dims_.push_back(l.output_shape[d]);
      steps_.push_back(in_step[l.perm[d]]);
    }
  }
  void Run(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream&) const override {
    const float* x = in[0]->data.data();
    float* y = out->data.data();
    int64_t blocks = 1;
    for (int64_t n : dims_) blocks *= n;
    const int64_t block = block_;
#pragma omp parallel for if (blocks * block > 65536)
    for (int64_t b = 0; b < blocks; ++b) {
      int64_t at = 0, rest = b;
      for (size_t d = dims_.size(); d-- > 0;) {
        at += (rest % dims_[d]) * steps_[d];
        rest /= dims_[d];
      }
      if (block == 1) {
        y[b] = x[at];
      } else {
        std::memcpy(y + b * block, x + at, block * sizeof(float));
      }
    }
  }

 private:
  std::vector<int64_t> dims_, steps_;  // outer output axes: sizes, and their steps in the input
  int64_t block_ = 1;
};

// Per pixel of C = groups * per_group channels: dst[j * groups + i] = src[i * per_group + j].
IONN_VECTOR_CLONES void ShufflePixels(const float* x, float* y, int64_t pixels, int64_t groups, int64_t per_group) {
  const int64_t C = groups * per_group;
  for (int64_t p = 0; p < pixels; ++p, x += C, y += C) {
    for (int64_t i = 0; i < groups; ++i) {
      for (int64_t j = 0; j < per_group; ++j) y[j * groups + i] = x[i * per_group + j];
    }
  }
}

class ChannelShuffleKernel : public Kernel {
 public:
  ChannelShuffleKernel(const Shape& x, int64_t groups) : x_(x), groups_(groups), per_group_(x[1] / groups) {}
  void Run(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream&) const override {
    const int64_t C = x_[1], plane = x_[2] * x_[3];
    const float* x = in[0]->data.data();
    float* y = out->data.data();
    for (int64_t n = 0; n < x_[0]; ++n) {
      for (int64_t j = 0; j < per_group_; ++j) {
        for (int64_t i = 0; i < groups_; ++i) {
          std::memcpy(y + (n * C + j * groups_ + i) * plane, x + (n * C + i * per_group_ + j) * plane,
                      plane * sizeof(float));
        }
      }
    }
  }
  bool channels_last() const override { return true; }
  void RunChannelsLast(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream&) const override {
    const int64_t C = x_[1], pixels = x_[0] * x_[2] * x_[3], groups = groups_, per_group = per_group_;
    const float* x = in[0]->data.data();
    float* y = out->data.data();
    constexpr int64_t kPixels = 64;  // per call
#pragma omp parallel for if (pixels * C > 65536)
    for (int64_t p = 0; p < pixels; p += kPixels) {
      ShufflePixels(x + p * C, y + p * C, std::min(kPixels, pixels - p), groups, per_group);
    }
  }

 private:
  Shape x_;
  int64_t groups_, per_group_;
};

}  // namespace

std::unique_ptr<Kernel> MakeChannelShuffleKernel(const Shape& x, int64_t groups, const KernelContext&) {
  return std::make_unique<ChannelShuffleKernel>(x, groups);
}

std::unique_ptr<Kernel> MakeTransposeKernel(Layer& layer, const std::vector<Shape>& in, const KernelContext&) {
  return std::make_unique<TransposeKernel>(layer, in[0]);
}

}  // namespace ionn
