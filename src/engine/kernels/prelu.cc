// PRelu (src/graph/ops/prelu.cc): a slope per channel (or one for all) runs
// per plane in NCHW and per pixel over the channels in NHWC; any other
// broadcast is expanded to the input's shape when the kernel is made.
#include "../kernel.h"

namespace ionn {
namespace {

// The slope expanded to `x`'s shape (numpy broadcasting from the right).
std::vector<float> Expanded(const Weight& slope, const Shape& x) {
  const int64_t n = ElementCount(x);
  const size_t rank = x.size(), offset = rank - slope.shape.size();
  std::vector<int64_t> strides(rank, 0);  // slope strides per x axis, 0 where broadcast
  int64_t stride = 1;
  for (size_t i = slope.shape.size(); i-- > 0;) {
    strides[offset + i] = slope.shape[i] == 1 ? 0 : stride;
    stride *= slope.shape[i];
  }
  std::vector<float> out(n);
  for (int64_t e = 0; e < n; ++e) {
    int64_t rest = e, at = 0;
    for (size_t d = rank; d-- > 0;) at += (rest % x[d]) * strides[d], rest /= x[d];
    out[e] = slope.data[at];
  }
  return out;
}

// Whether the slope varies at most along axis 1 of `x` (or not at all).
bool PerChannel(const Weight& slope, const Shape& x) {
  const size_t offset = x.size() - slope.shape.size();
  for (size_t i = 0; i < slope.shape.size(); ++i) {
    if (offset + i != 1 && slope.shape[i] != 1) return false;
  }
  return true;
}

class PReluKernel : public Kernel {
 public:
  PReluKernel(const Layer& l, const Shape& x) : per_channel_(x.size() >= 2 && PerChannel(l.weights[0], x)) {
    const Weight& slope = l.weights[0];
    if (per_channel_) {
      channels_ = x[1];
      planes_ = x[0] * x[1];
      plane_ = ElementCount(x) / planes_;
      slope_.assign(channels_, slope.data[0]);
      if (ElementCount(slope.shape) > 1) slope_ = slope.data;  // one per channel, in order
    } else if (ElementCount(slope.shape) == 1) {
      per_channel_ = true, channels_ = 1, planes_ = 1, plane_ = ElementCount(x);
      slope_ = slope.data;
    } else {
      slope_ = Expanded(slope, x);
    }
  }
  bool channels_last() const override { return per_channel_; }
  void Run(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream&) const override {
    const float* x = in[0]->data.data();
    float* y = out->data.data();
    if (!per_channel_) {
      const int64_t n = static_cast<int64_t>(slope_.size());
#pragma omp parallel for if (n > 65536)
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] < 0 ? slope_[i] * x[i] : x[i];
      return;
    }
#pragma omp parallel for if (planes_ * plane_ > 65536)
    for (int64_t p = 0; p < planes_; ++p) {
      const float a = slope_[p % channels_];
      const float* src = x + p * plane_;
      float* dst = y + p * plane_;
      for (int64_t i = 0; i < plane_; ++i) dst[i] = src[i] < 0 ? a * src[i] : src[i];
    }
  }
  void RunChannelsLast(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream&) const override {
    const float* x = in[0]->data.data();
    float* y = out->data.data();
    const int64_t pixels = planes_ * plane_ / channels_, C = channels_;
#pragma omp parallel for if (pixels * C > 65536)
    for (int64_t p = 0; p < pixels; ++p) {
      for (int64_t c = 0; c < C; ++c) {
        const float v = x[p * C + c];
        y[p * C + c] = v < 0 ? slope_[c] * v : v;
      }
    }
  }

 private:
  bool per_channel_;
  int64_t channels_ = 1, planes_ = 1, plane_ = 1;
  std::vector<float> slope_;  // per channel, or expanded to the input
};

std::unique_ptr<Kernel> MakePReluKernel(Layer& layer, const std::vector<Shape>& in, const KernelContext&) {
  auto k = std::make_unique<PReluKernel>(layer, in[0]);
  layer.weights.clear();
  return k;
}

uint64_t ExpandedSlopeBytes(const Layer& l, const std::vector<Shape>& in) {
  if (in[0].size() >= 2 && PerChannel(l.weights[0], in[0])) return 0;
  return ElementCount(l.weights[0].shape) == 1 ? 0 : static_cast<uint64_t>(ElementCount(in[0])) * sizeof(float);
}

}  // namespace

extern const KernelEntry kPReluKernel;
const KernelEntry kPReluKernel = {MakePReluKernel, ExpandedSlopeBytes};

}  // namespace ionn
