// Resize of H and W (src/graph/ops/resize.cc says what each attribute
// means): each output row and column's source pixels and weights are
// computed once, when the kernel is made; a run is then a gather (nearest)
// or a weighted sum of four pixels (linear), per plane in NCHW or per pixel
// over the channels in NHWC.
#include <algorithm>
#include <cmath>

#include "../kernel.h"

namespace ionn {
namespace {

// Where output positions 0..out-1 of one axis read: pixels lo and hi with
// weights 1 - frac and frac (nearest: lo only).
struct AxisTaps {
  std::vector<int64_t> lo, hi;
  std::vector<float> frac;
};

double SourceCoordinate(const std::string& mode, int64_t o, int64_t in, int64_t out, double scale) {
  if (mode == "half_pixel") return (o + 0.5) / scale - 0.5;
  if (mode == "pytorch_half_pixel") return out > 1 ? (o + 0.5) / scale - 0.5 : 0.0;
  if (mode == "align_corners") return out == 1 ? 0.0 : static_cast<double>(o) * (in - 1) / (out - 1);
  if (mode == "tf_half_pixel_for_nn") return (o + 0.5) / scale;
  return o / scale;  // asymmetric
}

int64_t Nearest(const std::string& mode, double x) {
  const double f = std::floor(x);
  if (mode == "floor") return static_cast<int64_t>(f);
  if (mode == "ceil") return static_cast<int64_t>(std::ceil(x));
  if (x - f == 0.5) return static_cast<int64_t>(mode == "round_prefer_floor" ? f : f + 1);
  return static_cast<int64_t>(std::round(x));
}

AxisTaps Taps(const Layer& l, int axis, int64_t in, int64_t out) {
  const std::string& coordinates = l.attrs.at("coordinate_transformation_mode").text;
  const bool linear = l.attrs.at("mode").text == "linear";
  const double scale = l.attrs.at("scales").floats[axis];
  AxisTaps t;
  for (int64_t o = 0; o < out; ++o) {
    const double x = SourceCoordinate(coordinates, o, in, out, scale);
    if (!linear) {
      const int64_t i = std::clamp<int64_t>(Nearest(l.attrs.at("nearest_mode").text, x), 0, in - 1);
      t.lo.push_back(i), t.hi.push_back(i), t.frac.push_back(0);
      continue;
    }
    const double c = std::clamp(x, 0.0, static_cast<double>(in - 1));
    const int64_t lo = static_cast<int64_t>(std::floor(c));
    t.lo.push_back(lo), t.hi.push_back(std::min(lo + 1, in - 1)), t.frac.push_back(static_cast<float>(c - lo));
  }
  return t;
}

class ResizeKernel : public Kernel {
 public:
  ResizeKernel(const Layer& l, const Shape& x)
      : n_(x[0]), c_(x[1]), h_(x[2]), w_(x[3]), oh_(l.output_shape[2]), ow_(l.output_shape[3]),
        linear_(l.attrs.at("mode").text == "linear"), rows_(Taps(l, 0, h_, oh_)), cols_(Taps(l, 1, w_, ow_)) {}

  void Run(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream&) const override {
    const float* x = in[0]->data.data();
    float* y = out->data.data();
    const int64_t planes = n_ * c_;
#pragma omp parallel for if (planes * oh_ * ow_ > 65536)
    for (int64_t p = 0; p < planes; ++p) {
      const float* plane = x + p * h_ * w_;
      float* dst = y + p * oh_ * ow_;
      for (int64_t oy = 0; oy < oh_; ++oy) {
        const float* r0 = plane + rows_.lo[oy] * w_;
        float* row = dst + oy * ow_;
        if (!linear_) {
          for (int64_t ox = 0; ox < ow_; ++ox) row[ox] = r0[cols_.lo[ox]];
          continue;
        }
        const float* r1 = plane + rows_.hi[oy] * w_;
        const float fy = rows_.frac[oy];
        for (int64_t ox = 0; ox < ow_; ++ox) {
          const int64_t a = cols_.lo[ox], b = cols_.hi[ox];
          const float fx = cols_.frac[ox];
          const float top = r0[a] + (r0[b] - r0[a]) * fx, bottom = r1[a] + (r1[b] - r1[a]) * fx;
          row[ox] = top + (bottom - top) * fy;
        }
      }
    }
  }

  bool channels_last() const override { return true; }
  void RunChannelsLast(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream&) const override {
    const float* x = in[0]->data.data();
    float* y = out->data.data();
    const int64_t C = c_;
#pragma omp parallel for if (n_ * oh_ * ow_ * C > 65536)
    for (int64_t r = 0; r < n_ * oh_; ++r) {  // output rows
      const int64_t n = r / oh_, oy = r % oh_;
      const float* r0 = x + (n * h_ + rows_.lo[oy]) * w_ * C;
      const float* r1 = x + (n * h_ + rows_.hi[oy]) * w_ * C;
      const float fy = rows_.frac[oy];
      float* row = y + r * ow_ * C;
      for (int64_t ox = 0; ox < ow_; ++ox) {
        float* dst = row + ox * C;
        const float* p00 = r0 + cols_.lo[ox] * C;
        if (!linear_) {
          std::copy(p00, p00 + C, dst);
          continue;
        }
        const float* p01 = r0 + cols_.hi[ox] * C;
        const float* p10 = r1 + cols_.lo[ox] * C;
        const float* p11 = r1 + cols_.hi[ox] * C;
        const float fx = cols_.frac[ox];
        for (int64_t c = 0; c < C; ++c) {
          const float top = p00[c] + (p01[c] - p00[c]) * fx, bottom = p10[c] + (p11[c] - p10[c]) * fx;
          dst[c] = top + (bottom - top) * fy;
        }
      }
    }
  }

 private:
  int64_t n_, c_, h_, w_, oh_, ow_;
  bool linear_;
  AxisTaps rows_, cols_;
};

std::unique_ptr<Kernel> MakeResizeKernel(Layer& layer, const std::vector<Shape>& in, const KernelContext&) {
  return std::make_unique<ResizeKernel>(layer, in[0]);
}

}  // namespace

extern const KernelFactory kResizeKernel;
const KernelFactory kResizeKernel = MakeResizeKernel;

}  // namespace ionn
