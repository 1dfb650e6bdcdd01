// ConvTranspose with oneDNN's deconvolution, in the layouts it picks for
// this CPU (reorders from and to NCHW inside the kernel). ONNX's weight
// [C, M/group, kh, kw] is oneDNN's "iohw" (grouped: "giohw") as it is. A
// negative end pad (rows past what any input reaches) oneDNN takes only
// down to about -stride: the primitive computes the rows inputs reach, and
// the kernel copies them out and fills the rest with the bias.
#include <algorithm>

#include "../kernel.h"

namespace ionn {
namespace {

using dnnl::memory;
using tag = memory::format_tag;

class ConvTransposeKernel : public Kernel {
 public:
  ConvTransposeKernel(const Layer& l, const Shape& x, const KernelContext& ctx) : cpu_(ctx.cpu) {
    const auto& kernel = l.attrs.at("kernel").ints;
    const auto& strides = l.attrs.at("strides").ints;
    const auto& dilations = l.attrs.at("dilations").ints;
    const auto& pads = l.attrs.at("pads").ints;
    const memory::dim g = l.attrs.at("group").ints[0], c = x[1], m = l.output_shape[1];
    src_plain_ = PlainDesc(x);
    // What the inputs reach: the output without its negative end pads.
    reach_ = l.output_shape;
    for (int d = 0; d < 2; ++d) reach_[2 + d] += std::min<int64_t>(pads[2 + d], 0);
    if (l.weights.size() > 1) bias_values_ = std::move(l.weights[1].data);
    if (reach_[2] < 1 || reach_[3] < 1) {  // the begin pads crop all the inputs reach: the bias alone
      reach_[2] = reach_[3] = 0;
      return;
    }
    dst_reach_ = PlainDesc(reach_);
    const memory::dims w_dims = g == 1 ? memory::dims{m, c, kernel[0], kernel[1]}
                                       : memory::dims{g, m / g, c / g, kernel[0], kernel[1]};
    const memory::desc w_onnx(w_dims, memory::data_type::f32, g == 1 ? tag::iohw : tag::giohw);
    const memory::desc any_w(w_dims, memory::data_type::f32, tag::any);
    const bool has_bias = l.weights.size() > 1;
    const memory::desc b_md({m}, memory::data_type::f32, tag::x);
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // a primitive may then run in two threads at once
    const dnnl::deconvolution_forward::desc d(
        dnnl::prop_kind::forward_inference, dnnl::algorithm::deconvolution_direct,
        memory::desc(x, memory::data_type::f32, tag::any), any_w, has_bias ? b_md : memory::desc(),
        memory::desc(reach_, memory::data_type::f32, tag::any), {strides[0], strides[1]},
        {dilations[0] - 1, dilations[1] - 1}, {pads[0], pads[1]},
        {std::max<int64_t>(pads[2], 0), std::max<int64_t>(pads[3], 0)});
    pd_ = dnnl::deconvolution_forward::primitive_desc(d, attr, cpu_);
    prim_ = dnnl::deconvolution_forward(pd_);
    src_prim_ = pd_.src_desc();
    dst_prim_ = pd_.dst_desc();
    dnnl::stream s(cpu_);
    memory w_user(w_onnx, cpu_, const_cast<float*>(l.weights[0].data.data()));
    weights_ = memory(pd_.weights_desc(), cpu_);
    dnnl::reorder(w_user, weights_).execute(s, w_user, weights_);
    if (has_bias) {
      bias_ = memory(b_md, cpu_, bias_values_.data());  // read in place: the primitive's and Place's
    }
    s.wait();
  }

  void Run(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream& s) const override {
    if (reach_[2] == 0) {
      Place(nullptr, out);
      return;
    }
    const bool whole = reach_ == out->shape;
    float* reached = whole ? out->data.data() : ThreadScratch(3, dst_reach_.get_size());
    memory src(src_plain_, cpu_, const_cast<float*>(in[0]->data.data()));
    memory dst(dst_reach_, cpu_, reached);
    memory src_used = src, dst_used = dst;
    if (src_prim_ != src_plain_) {
      src_used = memory(src_prim_, cpu_, ThreadScratch(0, src_prim_.get_size()));
      dnnl::reorder(src, src_used).execute(s, src, src_used);
    }
    if (dst_prim_ != dst_reach_) dst_used = memory(dst_prim_, cpu_, ThreadScratch(1, dst_prim_.get_size()));
    std::unordered_map<int, memory> args = {
        {DNNL_ARG_SRC, src_used}, {DNNL_ARG_WEIGHTS, weights_}, {DNNL_ARG_DST, dst_used}};
    if (bias_) args[DNNL_ARG_BIAS] = bias_;
    args[DNNL_ARG_SCRATCHPAD] = memory(pd_.scratchpad_desc(), cpu_, ThreadScratch(2, pd_.scratchpad_desc().get_size()));
    prim_.execute(s, args);
    if (dst_used != dst) dnnl::reorder(dst_used, dst).execute(s, dst_used, dst);
    s.wait();
    if (!whole) Place(reached, out);
  }
  const char* backend() const override { return "onednn"; }

 private:
  // The reached rows and columns into the top left of `out`, the bias (or
  // 0) everywhere else.
  void Place(const float* reached, Tensor* out) const {
    const int64_t planes = out->shape[0] * out->shape[1], channels = out->shape[1];
    const int64_t h = out->shape[2], w = out->shape[3], rh = reach_[2], rw = reach_[3];
    for (int64_t p = 0; p < planes; ++p) {
      const float fill = bias_values_.empty() ? 0.0f : bias_values_[p % channels];
      float* y = out->data.data() + p * h * w;
      std::fill(y, y + h * w, fill);
      for (int64_t r = 0; r < rh; ++r) std::copy_n(reached + (p * rh + r) * rw, rw, y + r * w);
    }
  }

  dnnl::engine cpu_;
  Shape reach_;
  memory::desc src_plain_, dst_reach_, src_prim_, dst_prim_;
  std::vector<float> bias_values_;
  dnnl::deconvolution_forward::primitive_desc pd_;
  dnnl::deconvolution_forward prim_;
  memory weights_, bias_;
};

std::unique_ptr<Kernel> MakeConvTransposeKernel(Layer& layer, const std::vector<Shape>& in, const KernelContext& ctx) {
  auto k = std::make_unique<ConvTransposeKernel>(layer, in[0], ctx);
  layer.weights.clear();  // reordered into the kernel's own
  return k;
}

}  // namespace

extern const KernelEntry kConvTransposeKernel;
const KernelEntry kConvTransposeKernel = {MakeConvTransposeKernel, nullptr};

}  // namespace ionn
