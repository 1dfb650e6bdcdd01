// The reductions of src/graph/ops/reduce.cc, and GlobalAveragePool. The
// tensor is seen as [outer, reduced, inner] when the reduced axes are
// adjacent (a squeeze-and-excitation mean over H and W, a LayerNorm's mean
// over the last axis): one pass, sums in double; other axis sets take one
// pass with an output index per element. The spatial mean of NCHW also runs
// on NHWC tensors, so that it stays between convolutions in that layout.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "../kernel.h"

namespace ionn {
namespace {

enum class Op { kMean, kSum, kMax, kMin };

// sum[c] += x[i * C + c] over `rows` rows of C values.
IONN_VECTOR_CLONES void AccumulateRows(const float* x, double* sum, int64_t rows, int64_t C) {
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t c = 0; c < C; ++c) sum[c] += x[i * C + c];
  }
}

// The largest (or smallest) of a and b; NaN when either is.
inline float Pick(Op op, float a, float b) {
  if (a != a || b != b) return std::numeric_limits<float>::quiet_NaN();
  return op == Op::kMax ? std::max(a, b) : std::min(a, b);
}

class SpatialMeanKernel : public Kernel {
 public:
  explicit SpatialMeanKernel(const Shape& x) : images_(x[0]), channels_(x[1]), planes_(x[0] * x[1]), plane_(x[2] * x[3]) {}
  void Run(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream&) const override {
    const float* x = in[0]->data.data();
    float* y = out->data.data();
    const int64_t planes = planes_, plane = plane_;
#pragma omp parallel for if (planes * plane > 65536)
    for (int64_t p = 0; p < planes; ++p) {
      double sum = 0;
      for (int64_t i = 0; i < plane; ++i) sum += x[p * plane + i];
      y[p] = static_cast<float>(sum / plane);
    }
  }
  bool channels_last() const override { return true; }
  void RunChannelsLast(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream&) const override {
    const int64_t C = channels_, plane = plane_;
    std::vector<double> sum(C);
    for (int64_t n = 0; n < images_; ++n) {
      std::fill(sum.begin(), sum.end(), 0.0);
      AccumulateRows(in[0]->data.data() + n * plane * C, sum.data(), plane, C);
      float* y = out->data.data() + n * C;
      for (int64_t c = 0; c < C; ++c) y[c] = static_cast<float>(sum[c] / plane);
    }
  }

 private:
  int64_t images_, channels_, planes_, plane_;
};

// Reduced axes adjacent: x is [outer, reduced, inner].
class BlockReduceKernel : public Kernel {
 public:
  BlockReduceKernel(Op op, int64_t outer, int64_t reduced, int64_t inner)
      : op_(op), outer_(outer), reduced_(reduced), inner_(inner) {}
  void Run(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream&) const override {
    const float* x = in[0]->data.data();
    float* y = out->data.data();
    const int64_t outer = outer_, reduced = reduced_, inner = inner_;
    const Op op = op_;
#pragma omp parallel for if (outer * reduced * inner > 65536 && outer > 1)
    for (int64_t o = 0; o < outer; ++o) {
      const float* block = x + o * reduced * inner;
      float* row = y + o * inner;
      if (op == Op::kMax || op == Op::kMin) {
        std::copy(block, block + inner, row);
        for (int64_t r = 1; r < reduced; ++r) {
          for (int64_t i = 0; i < inner; ++i) row[i] = Pick(op, row[i], block[r * inner + i]);
        }
        continue;
      }
      const double scale = op == Op::kMean ? 1.0 / static_cast<double>(reduced) : 1.0;
      if (inner == 1) {
        double s = 0;
        for (int64_t r = 0; r < reduced; ++r) s += block[r];
        row[0] = static_cast<float>(s * scale);
        continue;
      }
      std::vector<double> sum(inner, 0.0);
      AccumulateRows(block, sum.data(), reduced, inner);
      for (int64_t i = 0; i < inner; ++i) row[i] = static_cast<float>(sum[i] * scale);
    }
  }

 private:
  Op op_;
  int64_t outer_, reduced_, inner_;
};

// Any axes: each input element goes to its output element.
class GeneralReduceKernel : public Kernel {
 public:
  GeneralReduceKernel(Op op, const Shape& x, const std::vector<bool>& reduced) : op_(op), dims_(x) {
    int64_t out_stride = 1, count = 1;
    out_strides_.assign(x.size(), 0);
    for (size_t d = x.size(); d-- > 0;) {
      if (reduced[d]) {
        count *= x[d];
      } else {
        out_strides_[d] = out_stride;
        out_stride *= x[d];
      }
    }
    outputs_ = out_stride;
    count_ = count;
  }
  void Run(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream&) const override {
    const float* x = in[0]->data.data();
    float* y = out->data.data();
    const int64_t n = static_cast<int64_t>(in[0]->data.size());
    const int rank = static_cast<int>(dims_.size());
    std::vector<int64_t> at(rank, 0);
    if (op_ == Op::kMax || op_ == Op::kMin) {
      std::vector<bool> seen(outputs_, false);
      int64_t o = 0;
      for (int64_t i = 0; i < n; ++i) {
        y[o] = seen[o] ? Pick(op_, y[o], x[i]) : x[i];
        seen[o] = true;
        o = Next(&at, o);
      }
      return;
    }
    std::vector<double> sum(outputs_, 0.0);
    int64_t o = 0;
    for (int64_t i = 0; i < n; ++i) {
      sum[o] += x[i];
      o = Next(&at, o);
    }
    const double scale = op_ == Op::kMean ? 1.0 / static_cast<double>(count_) : 1.0;
    for (int64_t k = 0; k < outputs_; ++k) y[k] = static_cast<float>(sum[k] * scale);
  }

 private:
  // Steps the input coordinates `at` to the next element; returns the
  // output index of that element, given `o` that of the current one.
  int64_t Next(std::vector<int64_t>* at, int64_t o) const {
    for (size_t d = dims_.size(); d-- > 0;) {
      o += out_strides_[d];
      if (++(*at)[d] < dims_[d]) return o;
      o -= out_strides_[d] * dims_[d];
      (*at)[d] = 0;
    }
    return o;
  }
  Op op_;
  Shape dims_;
  std::vector<int64_t> out_strides_;
  int64_t outputs_ = 1, count_ = 1;
};

std::unique_ptr<Kernel> MakeReduceKernel(Layer& l, const std::vector<Shape>& in, const KernelContext&) {
  const Shape& x = in[0];
  const Op op = l.kind == LayerKind::kReduceSum   ? Op::kSum
                : l.kind == LayerKind::kReduceMax ? Op::kMax
                : l.kind == LayerKind::kReduceMin ? Op::kMin
                                                  : Op::kMean;
  std::vector<bool> reduced(x.size(), false);
  for (int64_t a : l.attrs.at("axes").ints) reduced[a] = true;
  if (op == Op::kMean && x.size() == 4 && !reduced[0] && !reduced[1] && reduced[2] && reduced[3]) {
    return MakeSpatialMeanKernel(x);
  }
  // Adjacent reduced axes (or none): [outer, reduced, inner].
  int first = -1, last = -1;
  for (int d = 0; d < static_cast<int>(x.size()); ++d) {
    if (reduced[d]) last = d, first = first < 0 ? d : first;
  }
  bool adjacent = true;
  for (int d = std::max(first, 0); d <= last; ++d) adjacent = adjacent && reduced[d];
  if (adjacent) {
    int64_t outer = 1, count = 1, inner = 1;
    for (int d = 0; d < static_cast<int>(x.size()); ++d) {
      (first < 0 || d < first ? outer : d <= last ? count : inner) *= x[d];
    }
    if (first < 0) inner = outer, outer = 1;  // no axis reduced: each element is its own
    return std::make_unique<BlockReduceKernel>(op, outer, count, inner);
  }
  return std::make_unique<GeneralReduceKernel>(op, x, reduced);
}

}  // namespace

std::unique_ptr<Kernel> MakeSpatialMeanKernel(const Shape& x) { return std::make_unique<SpatialMeanKernel>(x); }

#define IONN_REDUCE_KERNEL(kind)          \
  extern const KernelEntry kind##Kernel;  \
  const KernelEntry kind##Kernel = {MakeReduceKernel, nullptr};
IONN_REDUCE_KERNEL(kReduceMean)
IONN_REDUCE_KERNEL(kReduceSum)
IONN_REDUCE_KERNEL(kReduceMax)
IONN_REDUCE_KERNEL(kReduceMin)
#undef IONN_REDUCE_KERNEL

}  // namespace ionn
