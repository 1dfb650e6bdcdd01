// Local response normalization across channels (AlexNet, GoogLeNet) with
// oneDNN: y = x / (bias + alpha/size * sum of x^2 over size channels)^beta.
#include "../kernel.h"

namespace ionn {
namespace {

class LrnKernel : public Kernel {
 public:
  LrnKernel(const Layer& l, const Shape& x, const KernelContext& ctx) : cpu_(ctx.cpu), md_(PlainDesc(x)) {
    dnnl::lrn_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::lrn_across_channels, md_,
                              l.lrn_size, l.lrn_alpha, l.lrn_beta, l.lrn_bias);
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // see conv.cc
    pd_ = dnnl::lrn_forward::primitive_desc(d, attr, cpu_);
    prim_ = dnnl::lrn_forward(pd_);
  }
  void Run(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream& s) const override {
    dnnl::memory src(md_, cpu_, const_cast<float*>(in[0]->data.data()));
    dnnl::memory dst(md_, cpu_, out->data.data());
    std::unordered_map<int, dnnl::memory> args = {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}};
    dnnl::memory ws;
    if (pd_.workspace_desc().get_size() > 0) ws = dnnl::memory(pd_.workspace_desc(), cpu_), args[DNNL_ARG_WORKSPACE] = ws;
    args[DNNL_ARG_SCRATCHPAD] =
        dnnl::memory(pd_.scratchpad_desc(), cpu_, ThreadScratch(2, pd_.scratchpad_desc().get_size()));
    prim_.execute(s, args);
    s.wait();
  }

 private:
  dnnl::engine cpu_;
  dnnl::memory::desc md_;
  dnnl::lrn_forward::primitive_desc pd_;
  dnnl::lrn_forward prim_;
};

}  // namespace

std::unique_ptr<Kernel> MakeLrnKernel(Layer& layer, const std::vector<Shape>& in, const KernelContext& ctx) {
  return std::make_unique<LrnKernel>(layer, in[0], ctx);
}

}  // namespace ionn
