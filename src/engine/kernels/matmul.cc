// MatMul (src/graph/ops/matmul.cc): one row-major sgemm (oneDNN's) per
// output matrix, with each operand's matrix found through the broadcast
// batch axes; a constant B of two axes multiplies every row of A at once.
#include <oneapi/dnnl/dnnl.h>

#include <vector>

#include "../kernel.h"

namespace ionn {
namespace {

class MatMulKernel : public Kernel {
 public:
  MatMulKernel(Layer& l, const std::vector<Shape>& in) {
    const Shape& a = in[0];
    const Shape b = l.weights.empty() ? in[1] : l.weights[0].shape;
    if (!l.weights.empty()) b_ = std::move(l.weights[0].data);
    Shape out;
    (void)MatMulShapes(a, b, &out, &m_, &k_, &n_);  // checked by Graph::Finalize
    const Shape a2 = a.size() == 1 ? Shape{1, a[0]} : a;
    const Shape b2 = b.size() == 1 ? Shape{b[0], 1} : b;
    if (b2.size() == 2) {  // every matrix of A times the one B: rows stacked
      m_ *= ElementCount(a2) / (m_ * k_);
      a_offsets_ = {0};
      b_offsets_ = {0};
      return;
    }
    const size_t batch = std::max(a2.size(), b2.size()) - 2;
    // Strides (in matrices) of each operand's batch axes, aligned to the
    // output's; 0 where it is broadcast.
    std::vector<int64_t> dims(batch), sa(batch, 0), sb(batch, 0);
    int64_t stride_a = 1, stride_b = 1;
    for (size_t i = batch; i-- > 0;) {
      const size_t from_end = batch - i;
      const int64_t x = from_end + 2 > a2.size() ? 1 : a2[a2.size() - 2 - from_end];
      const int64_t y = from_end + 2 > b2.size() ? 1 : b2[b2.size() - 2 - from_end];
      dims[i] = x == 1 ? y : x;
      if (x != 1) sa[i] = stride_a;
      if (y != 1) sb[i] = stride_b;
      stride_a *= x, stride_b *= y;
    }
    int64_t count = 1;
    for (int64_t d : dims) count *= d;
    for (int64_t o = 0; o < count; ++o) {
      int64_t rest = o, at_a = 0, at_b = 0;
      for (size_t i = batch; i-- > 0;) {
        const int64_t c = rest % dims[i];
        rest /= dims[i];
        at_a += c * sa[i], at_b += c * sb[i];
      }
      a_offsets_.push_back(at_a * m_ * k_);
      b_offsets_.push_back(at_b * k_ * n_);
    }
  }
  const char* backend() const override { return "onednn"; }
  void Run(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream&) const override {
    const float* a = in[0]->data.data();
    const float* b = b_.empty() ? in[1]->data.data() : b_.data();
    float* c = out->data.data();
    for (size_t i = 0; i < a_offsets_.size(); ++i) {
      dnnl_sgemm('N', 'N', m_, n_, k_, 1.0f, a + a_offsets_[i], k_, b + b_offsets_[i], n_, 0.0f,
                 c + static_cast<int64_t>(i) * m_ * n_, n_);
    }
  }

 private:
  int64_t m_ = 1, k_ = 1, n_ = 1;
  std::vector<float> b_;  // a constant B
  std::vector<int64_t> a_offsets_, b_offsets_;  // per output matrix, in floats
};

std::unique_ptr<Kernel> MakeMatMulKernel(Layer& l, const std::vector<Shape>& in, const KernelContext&) {
  return std::make_unique<MatMulKernel>(l, in);
}

}  // namespace

extern const KernelEntry kMatMulKernel;
const KernelEntry kMatMulKernel = {MakeMatMulKernel, nullptr};

}  // namespace ionn
