// Local response normalization across channels (AlexNet, GoogLeNet) with
// oneDNN: y = x / (bias + alpha/size * sum of x^2 over size channels)^beta,
// in NCHW or NHWC.
#include "../kernel.h"

namespace ionn {
namespace {

class LrnKernel : public Kernel {
 public:
  LrnKernel(const Layer& l, const Shape& x, const KernelContext& ctx) : cpu_(ctx.cpu) {
    for (int layout = 0; layout < 2; ++layout) {
      const dnnl::memory::desc md(x, dnnl::memory::data_type::f32,
                                  layout == 0 ? dnnl::memory::format_tag::nchw : dnnl::memory::format_tag::nhwc);
      dnnl::lrn_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::lrn_across_channels, md,
                                l.lrn_size, l.lrn_alpha, l.lrn_beta, l.lrn_bias);
      dnnl::primitive_attr attr;
      attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // see conv.cc
      pd_[layout] = dnnl::lrn_forward::primitive_desc(d, attr, cpu_);
      prim_[layout] = dnnl::lrn_forward(pd_[layout]);
    }
  }
  void Run(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream& s) const override { Lrn(0, in, out, s); }
  bool channels_last() const override { return true; }
  const char* backend() const override { return "onednn"; }
  void RunChannelsLast(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream& s) const override {
    Lrn(1, in, out, s);
  }

 private:
  void Lrn(int layout, const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream& s) const {
    const auto& pd = pd_[layout];
    dnnl::memory src(pd.src_desc(), cpu_, const_cast<float*>(in[0]->data.data()));
    dnnl::memory dst(pd.dst_desc(), cpu_, out->data.data());
    std::unordered_map<int, dnnl::memory> args = {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}};
    dnnl::memory ws;
    if (pd.workspace_desc().get_size() > 0) ws = dnnl::memory(pd.workspace_desc(), cpu_), args[DNNL_ARG_WORKSPACE] = ws;
    args[DNNL_ARG_SCRATCHPAD] = dnnl::memory(pd.scratchpad_desc(), cpu_, ThreadScratch(2, pd.scratchpad_desc().get_size()));
    prim_[layout].execute(s, args);
    s.wait();
  }

  dnnl::engine cpu_;
  dnnl::lrn_forward::primitive_desc pd_[2];  // NCHW, NHWC
  dnnl::lrn_forward prim_[2];
};

}  // namespace

std::unique_ptr<Kernel> MakeLrnKernel(Layer& layer, const std::vector<Shape>& in, const KernelContext& ctx) {
  return std::make_unique<LrnKernel>(layer, in[0], ctx);
}

}  // namespace ionn
