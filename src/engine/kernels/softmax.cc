// Softmax over one axis, or over all axes from `axis` on (ONNX opset < 13).
// Over the last axes: oneDNN's primitive; over others: our loop.
#include <algorithm>
#include <cmath>
#include <limits>

#include "../kernel.h"

namespace ionn {
namespace {

class SoftmaxKernel : public Kernel {
 public:
  SoftmaxKernel(const Layer& l, const Shape& x, const KernelContext& ctx) : cpu_(ctx.cpu) {
    const int rank = static_cast<int>(x.size());
    const int axis = l.axis < 0 ? l.axis + rank : l.axis;
    outer_ = 1, dim_ = 1, inner_ = 1;
    for (int d = 0; d < axis; ++d) outer_ *= x[d];
    if (l.softmax_coerce_2d) {
      for (int d = axis; d < rank; ++d) dim_ *= x[d];
    } else {
      dim_ = x[axis];
      for (int d = axis + 1; d < rank; ++d) inner_ *= x[d];
    }
    // Over contiguous rows (attention's last axis, a classifier's): oneDNN's
    // vectorized primitive (our loop calls libm's exp per element: 7% of
    // ViT's time). Other axes: the loop below.
    if (inner_ == 1) {
      const dnnl::memory::desc md({outer_, dim_}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::ab);
      dnnl::primitive_attr attr;
      attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // a primitive may then run in two threads at once
      pd_ = dnnl::softmax_forward::primitive_desc(
          dnnl::softmax_forward::desc(dnnl::prop_kind::forward_inference, md, 1), attr, cpu_);
      if (IsReference(pd_)) pd_ = {};
      if (pd_) prim_ = dnnl::softmax_forward(pd_);
    }
  }
  const char* backend() const override { return pd_ ? "onednn" : "ionn"; }
  void Run(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream& stream) const override {
    if (pd_) {
      const float* x = in[0]->data.data();
      float* y = out->data.data();
      dnnl::memory src(pd_.src_desc(), cpu_, const_cast<float*>(x));
      dnnl::memory dst(pd_.dst_desc(), cpu_, y);
      const dnnl::memory::desc scratch = pd_.scratchpad_desc();
      prim_.execute(stream, {{DNNL_ARG_SRC, src},
                             {DNNL_ARG_DST, dst},
                             {DNNL_ARG_SCRATCHPAD, dnnl::memory(scratch, cpu_, ThreadScratch(0, scratch.get_size()))}});
      stream.wait();
      // A NaN or +inf anywhere in a row makes the whole row NaN, as numpy's
      // (and the loop's: exp(inf - inf)); the primitive's max may step over
      // a NaN.
      for (int64_t o = 0; o < outer_; ++o) {
        const float* row = x + o * dim_;
        bool nan = false;
        for (int64_t d = 0; d < dim_; ++d) nan |= row[d] != row[d] || row[d] == std::numeric_limits<float>::infinity();
        if (nan) std::fill(y + o * dim_, y + (o + 1) * dim_, std::numeric_limits<float>::quiet_NaN());
      }
      return;
    }
    for (int64_t o = 0; o < outer_; ++o) {
      for (int64_t i = 0; i < inner_; ++i) {
        const float* x = in[0]->data.data() + o * dim_ * inner_ + i;
        float* y = out->data.data() + o * dim_ * inner_ + i;
        float mx = x[0];
        for (int64_t d = 1; d < dim_; ++d) mx = std::max(mx, x[d * inner_]);
        double sum = 0;
        for (int64_t d = 0; d < dim_; ++d) sum += (y[d * inner_] = std::exp(x[d * inner_] - mx));
        const float inv = static_cast<float>(1.0 / sum);
        for (int64_t d = 0; d < dim_; ++d) y[d * inner_] *= inv;
      }
    }
  }

 private:
  int64_t outer_, dim_, inner_;
  dnnl::engine cpu_;
  dnnl::softmax_forward::primitive_desc pd_;  // empty: our loop
  dnnl::softmax_forward prim_;
};

}  // namespace

std::unique_ptr<Kernel> MakeSoftmaxKernel(Layer& layer, const std::vector<Shape>& in, const KernelContext& ctx) {
  return std::make_unique<SoftmaxKernel>(layer, in[0], ctx);
}

}  // namespace ionn
