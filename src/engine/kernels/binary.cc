// Element-wise Add, Mul, Sub, Div, Max and Min with numpy broadcasting, of two
// tensors or of a tensor and a constant (squeeze-and-excitation's channel
// scale, SiLU's x * sigmoid(x), a scalar). The output's axes are merged where
// both operands step alike, so the inner loop runs over a contiguous block.
// A 4-D output also runs in NHWC: the same loops over the operands' shapes
// permuted, when a constant operand has the same bytes in both layouts.
#include <algorithm>

#include "../kernel.h"

namespace ionn {
namespace {

struct Axis {
  int64_t n, sa, sb;  // count, and the step in each operand (0: broadcast)
};

// The operands' shapes aligned to the output's rank, as steps per axis.
std::vector<Axis> MergedAxes(const Shape& a, const Shape& b, const Shape& out) {
  const size_t rank = out.size();
  std::vector<Axis> axes;
  int64_t step_a = 1, step_b = 1;
  for (size_t i = rank; i-- > 0;) {  // innermost first
    const size_t off_a = rank - a.size(), off_b = rank - b.size();
    const int64_t da = i < off_a ? 1 : a[i - off_a], db = i < off_b ? 1 : b[i - off_b];
    if (out[i] == 1) continue;
    const Axis axis{out[i], da == 1 ? 0 : step_a, db == 1 ? 0 : step_b};
    step_a *= da, step_b *= db;
    if (!axes.empty()) {
      Axis& inner = axes.back();
      const bool a_joins = axis.sa == inner.sa * inner.n, b_joins = axis.sb == inner.sb * inner.n;
      if (a_joins && b_joins) {  // contiguous (or broadcast) across both axes alike
        inner.n *= axis.n;
        continue;
      }
    }
    axes.push_back(axis);
  }
  if (axes.empty()) axes.push_back({1, 0, 0});
  std::reverse(axes.begin(), axes.end());
  return axes;
}

// One output row: each operand steps along it (1) or repeats one value (0).
template <typename Op>
inline void RowOf(Op op, const float* pa, int64_t sa, const float* pb, int64_t sb, float* py, int64_t n) {
  if (sa == 1 && sb == 1) {
    for (int64_t i = 0; i < n; ++i) py[i] = op(pa[i], pb[i]);
  } else if (sa == 1) {
    const float vb = pb[0];
    for (int64_t i = 0; i < n; ++i) py[i] = op(pa[i], vb);
  } else if (sb == 1) {
    const float va = pa[0];
    for (int64_t i = 0; i < n; ++i) py[i] = op(va, pb[i]);
  } else {
    const float v = op(pa[0], pb[0]);
    for (int64_t i = 0; i < n; ++i) py[i] = v;
  }
}

IONN_VECTOR_CLONES void Row(LayerKind kind, const float* pa, int64_t sa, const float* pb, int64_t sb, float* py,
                            int64_t n) {
  switch (kind) {
    case LayerKind::kAdd: RowOf([](float p, float q) { return p + q; }, pa, sa, pb, sb, py, n); break;
    case LayerKind::kMul: RowOf([](float p, float q) { return p * q; }, pa, sa, pb, sb, py, n); break;
    case LayerKind::kSub: RowOf([](float p, float q) { return p - q; }, pa, sa, pb, sb, py, n); break;
    // NaN where either operand is NaN, as numpy's maximum and minimum.
    case LayerKind::kMax: RowOf([](float p, float q) { return p > q || p != p ? p : q; }, pa, sa, pb, sb, py, n); break;
    case LayerKind::kMin: RowOf([](float p, float q) { return p < q || p != p ? p : q; }, pa, sa, pb, sb, py, n); break;
    default: RowOf([](float p, float q) { return p / q; }, pa, sa, pb, sb, py, n); break;
  }
}

void Apply(LayerKind kind, const float* a, const float* b, float* y, const std::vector<Axis>& axes) {
  const Axis inner = axes.back();
  int64_t rows = 1;
  for (size_t d = 0; d + 1 < axes.size(); ++d) rows *= axes[d].n;
#pragma omp parallel for if (rows * inner.n > 65536)
  for (int64_t r = 0; r < rows; ++r) {
    int64_t ia = 0, ib = 0, rest = r;
    for (size_t d = axes.size() - 1; d-- > 0;) {
      const int64_t k = rest % axes[d].n;
      rest /= axes[d].n;
      ia += k * axes[d].sa, ib += k * axes[d].sb;
    }
    Row(kind, a + ia, inner.sa, b + ib, inner.sb, y + r * inner.n, inner.n);
  }
}

class BinaryKernel : public Kernel {
 public:
  BinaryKernel(Layer& l, const std::vector<Shape>& in) : kind_(l.kind) {
    if (!l.weights.empty()) {
      constant_ = std::move(l.weights[0].data);
      constant_first_ = l.weight_first;
    }
    const Shape& c = l.weights.empty() ? in[1] : l.weights[0].shape;
    const Shape& a = !l.weights.empty() && l.weight_first ? c : in[0];
    const Shape& b = l.weights.empty() ? in[1] : l.weight_first ? in[0] : c;
    axes_ = MergedAxes(a, b, l.output_shape);
    const Shape& out = l.output_shape;
    if (out.size() == 4 && a.size() <= 4 && b.size() <= 4 && (l.weights.empty() || SameBytesInNhwc(c))) {
      cl_axes_ = MergedAxes(ChannelsLastShape(Aligned(a)), ChannelsLastShape(Aligned(b)), ChannelsLastShape(out));
    }
  }
  bool channels_last() const override { return !cl_axes_.empty(); }
  void RunChannelsLast(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream&) const override {
    Compute(in, out, cl_axes_);
  }
  void Run(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream&) const override { Compute(in, out, axes_); }

 private:
  static Shape Aligned(const Shape& s) {  // numpy's alignment to rank 4
    Shape a(4 - s.size(), 1);
    a.insert(a.end(), s.begin(), s.end());
    return a;
  }
  static bool SameBytesInNhwc(const Shape& s) {
    const Shape a = Aligned(s);
    return a[1] == 1 || a[2] * a[3] == 1;
  }
  void Compute(const std::vector<const Tensor*>& in, Tensor* out, const std::vector<Axis>& axes) const {
    const float* a = in[0]->data.data();
    const float* b = in.size() > 1 ? in[1]->data.data() : constant_.data();
    if (in.size() == 1 && constant_first_) std::swap(a, b);
    float* y = out->data.data();
    Apply(kind_, a, b, y, axes);
  }

  LayerKind kind_;
  std::vector<float> constant_;
  bool constant_first_ = false;
  std::vector<Axis> axes_, cl_axes_;  // NCHW; NHWC (empty: plain only)
};

}  // namespace

std::unique_ptr<Kernel> MakeBinaryKernel(Layer& layer, const std::vector<Shape>& in, const KernelContext&) {
  return std::make_unique<BinaryKernel>(layer, in);
}

// Max and Min: kinds of their own (ionn/op.h), on the same loops.
extern const KernelEntry kMaxKernel, kMinKernel;
const KernelEntry kMaxKernel = {MakeBinaryKernel, nullptr};
const KernelEntry kMinKernel = {MakeBinaryKernel, nullptr};

}  // namespace ionn
