// Resize of H and W (src/graph/ops/resize.cc says what each attribute
// means): each output row and column's source pixels and weights are
// computed once, when the kernel is made; a run is then a gather (nearest)
// or a weighted sum of four pixels (linear), per plane in NCHW or per pixel
// over the channels in NHWC. Cubic, exclude_outside and tf_crop_and_resize
// take a general path (NCHW only): 4 (cubic) or 2 taps per axis with the
// coefficients of ONNX's reference, a value outside the crop replaced by
// extrapolation_value.
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

// One axis: its input and output lengths, the scale coordinates map with
// and the resized length (ops/resize.cc: from scales, or from sizes).
struct Axis {
  int64_t in, out;
  double scale, resized;
};

Axis AxisOf(const Layer& l, int axis, int64_t in, int64_t out) {
  auto it = l.attrs.find("scales");
  if (it == l.attrs.end()) return {in, out, static_cast<double>(out) / in, static_cast<double>(out)};
  const double scale = it->second.floats[axis];
  return {in, out, scale, in * scale};
}

// A coordinate far outside the input reads its edge, as one just outside
// does: clamped first, so that no integer conversion overflows.
double Clamped(double x, int64_t in) { return std::clamp(x, -2.0, static_cast<double>(in) + 1); }

double SourceCoordinate(const std::string& mode, int64_t o, const Axis& a) {
  const int64_t in = a.in;
  const double scale = a.scale, resized = a.resized;
  if (mode == "half_pixel") return (o + 0.5) / scale - 0.5;
  if (mode == "pytorch_half_pixel") return resized > 1 ? (o + 0.5) / scale - 0.5 : 0.0;
  if (mode == "align_corners") return resized == 1 ? 0.0 : static_cast<double>(o) * (in - 1) / (resized - 1);
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

// The general path's taps: `k` input positions and weights per output
// position (o * k + i), and whether a crop puts the position outside.
struct GeneralTaps {
  int k = 2;
  std::vector<int64_t> idx;
  std::vector<float> w;
  std::vector<char> outside;
};

GeneralTaps General(const Layer& l, int axis, int64_t in, int64_t out) {
  const std::string& mode = l.attrs.at("mode").text;
  const std::string& coordinates = l.attrs.at("coordinate_transformation_mode").text;
  const std::string& nearest = l.attrs.at("nearest_mode").text;
  const Axis ax = AxisOf(l, axis, in, out);
  const bool exclude_outside = l.attrs.count("exclude_outside") != 0;
  const double a = mode == "cubic" ? l.attrs.at("cubic_coeff_a").floats[0] : 0;
  GeneralTaps t;
  t.k = mode == "cubic" ? 4 : 2;
  t.idx.reserve(out * t.k), t.w.reserve(out * t.k), t.outside.reserve(out);
  for (int64_t o = 0; o < out; ++o) {
    double x;
    if (coordinates == "tf_crop_and_resize") {
      const std::vector<float>& roi = l.attrs.at("roi").floats;  // [h start, w start, h end, w end]
      const double start = roi[axis], end = roi[2 + axis];
      x = ax.resized > 1 ? start * (in - 1) + o * (end - start) * (in - 1) / (ax.resized - 1)
                         : 0.5 * (start + end) * (in - 1);
      t.outside.push_back(x < 0 || x > in - 1);
    } else {
      x = SourceCoordinate(coordinates, o, ax);
      t.outside.push_back(0);
    }
    x = Clamped(x, in);
    // The neighbours of x with the ratio in (0, 1]: left - k/2 + 1 ... left + k/2.
    const int64_t left = static_cast<int64_t>(std::ceil(x)) - 1;
    const double r = x - left;
    std::vector<double> c;
    if (mode == "cubic") {
      auto far = [&](double d) { return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a; };  // 1 < d < 2
      auto near = [&](double d) { return ((a + 2) * d - (a + 3)) * d * d + 1; };       // d <= 1
      c = {far(r + 1), near(r), near(1 - r), far(2 - r)};
    } else if (mode == "linear") {
      c = {1 - r, r};
    } else {
      const bool up = r == 1 || (nearest == "round_prefer_floor" ? r > 0.5
                                 : nearest == "round_prefer_ceil" ? r >= 0.5
                                                                  : nearest == "ceil");
      c = {up ? 0.0 : 1.0, up ? 1.0 : 0.0};
    }
    const int64_t first = left - (t.k / 2 - 1);
    double sum = 0;
    for (int i = 0; i < t.k; ++i) {
      if (exclude_outside && (first + i < 0 || first + i >= in)) c[i] = 0;
      sum += c[i];
    }
    for (int i = 0; i < t.k; ++i) {
      t.idx.push_back(std::clamp<int64_t>(first + i, 0, in - 1));  // the edge repeated
      t.w.push_back(static_cast<float>(exclude_outside && sum != 0 ? c[i] / sum : c[i]));
    }
  }
  return t;
}

bool NeedsGeneral(const Layer& l) {
  return l.attrs.at("mode").text == "cubic" || l.attrs.at("coordinate_transformation_mode").text == "tf_crop_and_resize" ||
         l.attrs.count("exclude_outside") != 0;
}

AxisTaps Taps(const Layer& l, int axis, int64_t in, int64_t out) {
  const std::string& coordinates = l.attrs.at("coordinate_transformation_mode").text;
  const bool linear = l.attrs.at("mode").text == "linear";
  const Axis ax = AxisOf(l, axis, in, out);
  AxisTaps t;
  t.lo.reserve(out), t.hi.reserve(out), t.frac.reserve(out);
  for (int64_t o = 0; o < out; ++o) {
    const double x = Clamped(SourceCoordinate(coordinates, o, ax), in);
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
        linear_(l.attrs.at("mode").text == "linear"), general_(NeedsGeneral(l)) {
    if (general_) {
      grows_ = General(l, 0, h_, oh_), gcols_ = General(l, 1, w_, ow_);
      if (l.attrs.count("extrapolation_value")) extrapolation_ = l.attrs.at("extrapolation_value").floats[0];
    } else {
      rows_ = Taps(l, 0, h_, oh_), cols_ = Taps(l, 1, w_, ow_);
    }
  }

  void Run(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream&) const override {
    const float* x = in[0]->data.data();
    float* y = out->data.data();
    const int64_t planes = n_ * c_;
    if (general_) {
      RunGeneral(x, y);
      return;
    }
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

  bool channels_last() const override { return !general_; }
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
  void RunGeneral(const float* x, float* y) const {
    const int ky = grows_.k, kx = gcols_.k;
#pragma omp parallel for if (n_ * c_ * oh_ * ow_ > 65536)
    for (int64_t p = 0; p < n_ * c_; ++p) {
      const float* plane = x + p * h_ * w_;
      float* dst = y + p * oh_ * ow_;
      for (int64_t oy = 0; oy < oh_; ++oy) {
        for (int64_t ox = 0; ox < ow_; ++ox) {
          if (grows_.outside[oy] || gcols_.outside[ox]) {
            dst[oy * ow_ + ox] = extrapolation_;
            continue;
          }
          double v = 0;
          for (int i = 0; i < ky; ++i) {
            const float* row = plane + grows_.idx[oy * ky + i] * w_;
            double across = 0;
            for (int j = 0; j < kx; ++j) across += gcols_.w[ox * kx + j] * row[gcols_.idx[ox * kx + j]];
            v += grows_.w[oy * ky + i] * across;
          }
          dst[oy * ow_ + ox] = static_cast<float>(v);
        }
      }
    }
  }

  int64_t n_, c_, h_, w_, oh_, ow_;
  bool linear_, general_;
  AxisTaps rows_, cols_;
  GeneralTaps grows_, gcols_;
  float extrapolation_ = 0;
};

std::unique_ptr<Kernel> MakeResizeKernel(Layer& layer, const std::vector<Shape>& in, const KernelContext&) {
  return std::make_unique<ResizeKernel>(layer, in[0]);
}

// The tables: per output row and column, 2 indices and a weight (fast
// paths), or 4 (cubic) or 2 indices and weights and a flag (general).
uint64_t ResizeTableBytes(const Layer& l, const std::vector<Shape>&) {
  const uint64_t positions = static_cast<uint64_t>(l.output_shape[2] + l.output_shape[3]);
  if (!NeedsGeneral(l)) return positions * (2 * sizeof(int64_t) + sizeof(float));
  const uint64_t k = l.attrs.at("mode").text == "cubic" ? 4 : 2;
  return positions * (k * (sizeof(int64_t) + sizeof(float)) + 1);
}

}  // namespace

extern const KernelEntry kResizeKernel;
const KernelEntry kResizeKernel = {MakeResizeKernel, ResizeTableBytes};

}  // namespace ionn
