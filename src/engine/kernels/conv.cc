// Convolution (groups, depthwise, dilation) with oneDNN. The primitive picks
// its own activation layout; inputs and outputs are reordered from and to
// NCHW around it, weights once at creation.
#include "../kernel.h"

namespace ionn {
namespace {

using dnnl::memory;
using tag = memory::format_tag;

class ConvKernel : public Kernel {
 public:
  ConvKernel(Layer& l, const Shape& x, const KernelContext& ctx) : cpu_(ctx.cpu) {
    const memory::dim g = l.group, oc = l.out_channels, ic = x[1];
    src_plain_ = PlainDesc(x);
    dst_plain_ = PlainDesc(l.output_shape);
    const memory::dims w_dims = g == 1 ? memory::dims{oc, ic, l.kernel_h, l.kernel_w}
                                       : memory::dims{g, oc / g, ic / g, l.kernel_h, l.kernel_w};
    const memory::desc w_plain(w_dims, memory::data_type::f32, g == 1 ? tag::oihw : tag::goihw);
    const memory::desc any_src(x, memory::data_type::f32, tag::any);
    const memory::desc any_dst(l.output_shape, memory::data_type::f32, tag::any);
    const memory::desc any_w(w_dims, memory::data_type::f32, tag::any);
    const bool has_bias = l.weights.size() > 1;
    const memory::desc b_md({oc}, memory::data_type::f32, tag::x);
    dnnl::convolution_forward::desc d(
        dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, any_src, any_w,
        has_bias ? b_md : memory::desc(), any_dst, {l.stride_h, l.stride_w},
        {l.dilation_h - 1, l.dilation_w - 1}, {l.pad_top, l.pad_left}, {l.pad_bottom, l.pad_right});
    pd_ = dnnl::convolution_forward::primitive_desc(d, cpu_);
    prim_ = dnnl::convolution_forward(pd_);
    dnnl::stream s(cpu_);
    memory w_user(w_plain, cpu_, l.weights[0].data.data());
    weights_ = memory(pd_.weights_desc(), cpu_);
    dnnl::reorder(w_user, weights_).execute(s, w_user, weights_);
    if (has_bias) {
      bias_ = memory(b_md, cpu_);
      std::copy(l.weights[1].data.begin(), l.weights[1].data.end(), static_cast<float*>(bias_.get_data_handle()));
    }
    s.wait();
    l.weights.clear();
  }

  void Run(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream& s) const override {
    memory src(src_plain_, cpu_, const_cast<float*>(in[0]->data.data()));
    memory dst_user(dst_plain_, cpu_, out->data.data());
    memory src_used = src, dst_used = dst_user;
    if (pd_.src_desc() != src_plain_) {
      src_used = memory(pd_.src_desc(), cpu_);
      dnnl::reorder(src, src_used).execute(s, src, src_used);
    }
    if (pd_.dst_desc() != dst_plain_) dst_used = memory(pd_.dst_desc(), cpu_);
    std::unordered_map<int, memory> args = {
        {DNNL_ARG_SRC, src_used}, {DNNL_ARG_WEIGHTS, weights_}, {DNNL_ARG_DST, dst_used}};
    if (bias_) args[DNNL_ARG_BIAS] = bias_;
    prim_.execute(s, args);
    if (dst_used != dst_user) dnnl::reorder(dst_used, dst_user).execute(s, dst_used, dst_user);
    s.wait();
  }

 private:
  dnnl::engine cpu_;
  memory::desc src_plain_, dst_plain_;
  dnnl::convolution_forward::primitive_desc pd_;
  dnnl::convolution_forward prim_;
  memory weights_, bias_;
};

}  // namespace

std::unique_ptr<Kernel> MakeConvKernel(Layer& layer, const std::vector<Shape>& in, const KernelContext& ctx) {
  return std::make_unique<ConvKernel>(layer, in[0], ctx);
}

}  // namespace ionn
