// Transpose: output axis i is input axis perm[i] (ShuffleNet's channel
// shuffle moves [N, g, C/g, H, W] to [N, C/g, g, H, W]). Axes that stay
// together merge; the last one is copied a row at a time. And the channel
// shuffle that Reshape, this Transpose and Reshape compute together, run
// as one kernel, in NCHW or NHWC.
#include <algorithm>
#include <cstring>

#include "../kernel.h"

namespace ionn {
namespace {

class TransposeKernel : public Kernel {
 public:
  // The output's axes, each with its step in the input; output axes that
  // are consecutive in the input too merge into one, and axes of size 1
  // go: the window partitions of Swin and MaxViT (6-D) come down to 3 or 4
  // axes. The last axis is copied by rows (a block, or a strided gather).
  TransposeKernel(const Layer& l, const Shape& x) {
    const size_t rank = x.size();
    std::vector<int64_t> in_step(rank, 1);
    for (size_t d = rank - 1; d-- > 0;) in_step[d] = in_step[d + 1] * x[d + 1];
    for (size_t d = 0; d < rank; ++d) {
      const int64_t n = l.output_shape[d], step = in_step[l.perm[d]];
      if (n == 1) continue;
      if (!dims_.empty() && steps_.back() == step * n) {  // the previous axis steps over this one whole
        dims_.back() *= n;
        steps_.back() = step;
        continue;
      }
      dims_.push_back(n);
      steps_.push_back(step);
    }
    if (dims_.empty()) dims_ = {1}, steps_ = {1};
    row_ = dims_.back();
    row_step_ = steps_.back();
    dims_.pop_back();
    steps_.pop_back();
  }
  void Run(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream&) const override {
    const float* x = in[0]->data.data();
    float* y = out->data.data();
    int64_t rows = 1;
    for (int64_t n : dims_) rows *= n;
    const int64_t row = row_, row_step = row_step_;
#pragma omp parallel for if (rows * row > 65536)
    for (int64_t r = 0; r < rows; ++r) {
      int64_t at = 0, rest = r;
      for (size_t d = dims_.size(); d-- > 0;) {
        at += (rest % dims_[d]) * steps_[d];
        rest /= dims_[d];
      }
      if (row_step == 1) {
        std::memcpy(y + r * row, x + at, row * sizeof(float));
      } else {
        GatherRow(x + at, row_step, y + r * row, row);
      }
    }
  }

 private:
  static void GatherRow(const float* x, int64_t step, float* y, int64_t n) {
    for (int64_t k = 0; k < n; ++k) y[k] = x[k * step];
  }
  std::vector<int64_t> dims_, steps_;  // outer output axes: sizes, and their steps in the input
  int64_t row_ = 1, row_step_ = 1;     // the last output axis: its size and step in the input
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
