// Fully connected (Gemm/InnerProduct) with oneDNN's inner product; a 4-D
// input is flattened implicitly, as in Caffe.
#include "../kernel.h"

namespace ionn {
namespace {

using dnnl::memory;
using tag = memory::format_tag;

class FullyConnectedKernel : public Kernel {
 public:
  const char* backend() const override { return "onednn"; }
  FullyConnectedKernel(Layer& l, const Shape& x, const KernelContext& ctx) : cpu_(ctx.cpu) {
    const memory::dim oc = l.out_channels;
    src_plain_ = PlainDesc(x);
    dst_plain_ = PlainDesc(l.output_shape);
    memory::dims w_dims = {oc};
    for (size_t i = 1; i < x.size(); ++i) w_dims.push_back(x[i]);
    const tag w_tag = x.size() == 4 ? tag::oihw : tag::oi;
    const memory::desc w_plain(w_dims, memory::data_type::f32, w_tag);
    const memory::desc b_md({oc}, memory::data_type::f32, tag::x);
    const bool has_bias = l.weights.size() > 1;
    dnnl::inner_product_forward::desc d(dnnl::prop_kind::forward_inference, src_plain_,
                                        memory::desc(w_dims, memory::data_type::f32, tag::any),
                                        has_bias ? b_md : memory::desc(), dst_plain_);
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // see conv.cc
    pd_ = dnnl::inner_product_forward::primitive_desc(d, attr, cpu_);
    prim_ = dnnl::inner_product_forward(pd_);
    dnnl::stream s(cpu_);
    if (pd_.weights_desc() == w_plain) {  // read as given (gemm on AVX2): kept, not copied
      plain_weights_ = std::move(l.weights[0].data);
      weights_ = memory(w_plain, cpu_, plain_weights_.data());
    } else {
      memory w_user(w_plain, cpu_, l.weights[0].data.data());
      weights_ = memory(pd_.weights_desc(), cpu_);
      dnnl::reorder(w_user, weights_).execute(s, w_user, weights_);
    }
    if (has_bias) {
      bias_ = memory(b_md, cpu_);
      std::copy(l.weights[1].data.begin(), l.weights[1].data.end(), static_cast<float*>(bias_.get_data_handle()));
    }
    s.wait();
    l.weights.clear();
  }

  void Run(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream& s) const override {
    memory src(pd_.src_desc(), cpu_, const_cast<float*>(in[0]->data.data()));
    memory dst(pd_.dst_desc(), cpu_, out->data.data());
    std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights_}, {DNNL_ARG_DST, dst}};
    if (bias_) args[DNNL_ARG_BIAS] = bias_;
    args[DNNL_ARG_SCRATCHPAD] = memory(pd_.scratchpad_desc(), cpu_, ThreadScratch(2, pd_.scratchpad_desc().get_size()));
    prim_.execute(s, args);
    s.wait();
  }

 private:
  dnnl::engine cpu_;
  memory::desc src_plain_, dst_plain_;
  dnnl::inner_product_forward::primitive_desc pd_;
  dnnl::inner_product_forward prim_;
  std::vector<float> plain_weights_;  // the layer's weights, when the primitive reads them as they are
  memory weights_, bias_;
};

}  // namespace

std::unique_ptr<Kernel> MakeFullyConnectedKernel(Layer& layer, const std::vector<Shape>& in, const KernelContext& ctx) {
  return std::make_unique<FullyConnectedKernel>(layer, in[0], ctx);
}

}  // namespace ionn
