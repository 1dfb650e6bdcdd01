// Convolution (groups, depthwise, dilation) with oneDNN. The primitive picks
// its own activation layout (NHWC on AVX-512; asked for NHWC elsewhere, see
// below); inputs and outputs are reordered from and to NCHW around it where
// the engine does not keep them so, weights once at creation. Large 3x3 convolutions of stride
// 1 use oneDNN's Winograd algorithm where the CPU has it: it computes in
// nChw16c, but the kernel reads and writes NHWC like the direct ones, so
// the tensors between convolutions keep one layout. Kernel taps that read
// only zero padding at every output position are left out first
// (ReadingConvWindow: DeepLab's dilated ASPP).
#include <algorithm>
#include <climits>
#include <cmath>
#include <stdexcept>
#include <string>

#include "../kernel.h"
#include "../xnnpack/xnnpack.h"

namespace ionn {
namespace {

using dnnl::memory;
using tag = memory::format_tag;

// Whether oneDNN runs with AVX-512 here (ONEDNN_MAX_CPU_ISA may cap it).
bool HasAvx512() {
  const int avx512 = static_cast<int>(dnnl::cpu_isa::avx512_core);
  return (static_cast<int>(dnnl::get_effective_cpu_isa()) & avx512) == avx512;
}

// Whether Winograd beats oneDNN's direct convolution for this shape: 3x3,
// stride and dilation 1, ungrouped, channels in 16s, and enough channels
// for the transforms to cost less than the multiplications they save; on
// 7x7 and 8x8 maps only with many (per-convolution times of 74 shapes from
// the zoo and torchvision models on Zen 4, oneDNN 2.6: BENCHMARKS.md).
bool WinogradPays(const Layer& l, const Shape& x) {
  const int64_t ic = x[1], oc = l.out_channels, pixels = l.output_shape[2] * l.output_shape[3];
  return l.group == 1 && l.kernel_h == 3 && l.kernel_w == 3 && l.stride_h == 1 && l.stride_w == 1 &&
         l.dilation_h == 1 && l.dilation_w == 1 && ic % 16 == 0 && oc % 16 == 0 && ic * oc > 2048 &&
         (pixels >= 100 || ic * oc >= 49152);
}

class ConvKernel : public Kernel {
 public:
  // `weights` [oc, ic/g, kh, kw] and `bias` (empty: none) may differ from
  // the layer's when batch norms are folded in; `activation` adds one
  // (ReLU, Clip, sigmoid, swish, hard swish) as a post-op.
  ConvKernel(const Layer& l, const Shape& x, const std::vector<float>& weights, const std::vector<float>& bias,
             const ConvActivation* activation, const KernelContext& ctx)
      : cpu_(ctx.cpu) {
    const memory::dim g = l.group, oc = l.out_channels, ic = x[1];
    src_plain_ = PlainDesc(x);
    dst_plain_ = PlainDesc(l.output_shape);
    const memory::dims w_dims = g == 1 ? memory::dims{oc, ic, l.kernel_h, l.kernel_w}
                                       : memory::dims{g, oc / g, ic / g, l.kernel_h, l.kernel_w};
    const memory::desc w_plain(w_dims, memory::data_type::f32, g == 1 ? tag::oihw : tag::goihw);
    // Blocked layouts chosen by oneDNN beat plain NCHW even with the two
    // reorders (measured: ResNet-50 52 ms against 111 ms, 1 thread).
    const memory::desc any_src(x, memory::data_type::f32, tag::any);
    const memory::desc any_dst(l.output_shape, memory::data_type::f32, tag::any);
    const memory::desc any_w(w_dims, memory::data_type::f32, tag::any);
    const memory::desc blocked_src(x, memory::data_type::f32, tag::nChw16c);
    const memory::desc blocked_dst(l.output_shape, memory::data_type::f32, tag::nChw16c);
    const bool has_bias = !bias.empty();
    const memory::desc b_md({oc}, memory::data_type::f32, tag::x);
    dnnl::primitive_attr attr;
    // Our own per-thread scratchpad: with oneDNN's default (library) mode a
    // primitive must not run in two threads at once.
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    if (activation) {
      dnnl::post_ops ops;
      ops.append_eltwise(1.0f, activation->algorithm, activation->alpha, activation->beta);
      attr.set_post_ops(ops);
    }
    auto describe = [&](dnnl::algorithm algorithm, const memory::desc& src, const memory::desc& dst) {
      return dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference, algorithm, src, any_w,
                                             has_bias ? b_md : memory::desc(), dst, {l.stride_h, l.stride_w},
                                             {l.dilation_h - 1, l.dilation_w - 1}, {l.pad_top, l.pad_left},
                                             {l.pad_bottom, l.pad_right});
    };
    bool winograd = false;
    if (ctx.winograd && WinogradPays(l, x)) {
      try {  // oneDNN has it only on some CPUs (AVX-512) and for some shapes
        pd_ = dnnl::convolution_forward::primitive_desc(
            describe(dnnl::algorithm::convolution_winograd, blocked_src, blocked_dst), attr, cpu_);
        winograd = true;
      } catch (const dnnl::error&) {
      }
    }
    // Without AVX-512 oneDNN 2.6 picks blocked nChw8c, which no pooling of
    // its own but the reference loop reads (GoogLeNet's pools: 263 of 340
    // ms); its AVX2 convolutions run as fast in NHWC, which keeps the tensors
    // channels last from one convolution to the next, as on AVX-512
    // (GoogLeNet 102 -> 40 ms, Inception-BN 78 -> 42 ms, ResNet-50 98 ->
    // 92 ms at 1 thread, capped at AVX2; BENCHMARKS.md).
    if (!winograd && !HasAvx512()) {
      try {
        const memory::desc nhwc_src(x, memory::data_type::f32, tag::nhwc);
        const memory::desc nhwc_dst(l.output_shape, memory::data_type::f32, tag::nhwc);
        pd_ = dnnl::convolution_forward::primitive_desc(
            describe(dnnl::algorithm::convolution_direct, nhwc_src, nhwc_dst), attr, cpu_);
        // Only its reference loop takes NHWC for this shape: oneDNN's own
        // choice below does better.
        if (std::string(pd_.impl_info_str()).rfind("ref", 0) == 0) pd_ = {};
      } catch (const dnnl::error&) {  // none for this shape: oneDNN's own choice below
        pd_ = {};
      }
    }
    if (!winograd && !pd_) {
      pd_ = dnnl::convolution_forward::primitive_desc(describe(dnnl::algorithm::convolution_direct, any_src, any_dst),
                                                      attr, cpu_);
    }
    prim_ = dnnl::convolution_forward(pd_);
    src_prim_ = pd_.src_desc();
    dst_prim_ = pd_.dst_desc();
    src_native_ = winograd ? memory::desc(x, memory::data_type::f32, tag::nhwc) : src_prim_;
    dst_native_ = winograd ? memory::desc(l.output_shape, memory::data_type::f32, tag::nhwc) : dst_prim_;
    reorder_src_[0] = src_plain_ != src_prim_, reorder_src_[1] = src_native_ != src_prim_;
    reorder_dst_[0] = dst_plain_ != dst_prim_, reorder_dst_[1] = dst_native_ != dst_prim_;
    dnnl::stream s(cpu_);
    memory w_user(w_plain, cpu_, const_cast<float*>(weights.data()));
    weights_ = memory(pd_.weights_desc(), cpu_);
    dnnl::reorder(w_user, weights_).execute(s, w_user, weights_);
    if (has_bias) {
      bias_ = memory(b_md, cpu_);
      std::copy(bias.begin(), bias.end(), static_cast<float*>(bias_.get_data_handle()));
    }
    s.wait();
  }

  void Run(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream& s) const override {
    RunNative(in[0]->data.data(), false, out->data.data(), false, s);
  }
  const memory::desc* native_src() const override { return &src_native_; }
  const memory::desc* native_dst() const override { return &dst_native_; }
  const char* backend() const override { return "onednn"; }
  bool reference() const { return IsReference(pd_); }  // oneDNN runs one of its reference loops

  void RunNative(const float* src_data, bool src_native, float* dst_data, bool dst_native,
                 dnnl::stream& s) const override {
    memory src(src_native ? src_native_ : src_plain_, cpu_, const_cast<float*>(src_data));
    memory dst_user(dst_native ? dst_native_ : dst_plain_, cpu_, dst_data);
    memory src_used = src, dst_used = dst_user;
    if (reorder_src_[src_native]) {
      src_used = memory(src_prim_, cpu_, ThreadScratch(0, src_prim_.get_size()));
      dnnl::reorder(src, src_used).execute(s, src, src_used);
    }
    if (reorder_dst_[dst_native]) dst_used = memory(dst_prim_, cpu_, ThreadScratch(1, dst_prim_.get_size()));
    std::unordered_map<int, memory> args = {
        {DNNL_ARG_SRC, src_used}, {DNNL_ARG_WEIGHTS, weights_}, {DNNL_ARG_DST, dst_used}};
    if (bias_) args[DNNL_ARG_BIAS] = bias_;
    args[DNNL_ARG_SCRATCHPAD] = memory(pd_.scratchpad_desc(), cpu_, ThreadScratch(2, pd_.scratchpad_desc().get_size()));
    prim_.execute(s, args);
    if (dst_used != dst_user) dnnl::reorder(dst_used, dst_user).execute(s, dst_used, dst_user);
    s.wait();
  }

 private:
  dnnl::engine cpu_;
  // plain: NCHW; native: what the kernel shows the engine (the primitive's
  // own layout, or NHWC for Winograd); prim: what the primitive computes in.
  memory::desc src_plain_, dst_plain_, src_native_, dst_native_, src_prim_, dst_prim_;
  bool reorder_src_[2], reorder_dst_[2];  // [native]: whether that layout needs a reorder to or from prim
  dnnl::convolution_forward::primitive_desc pd_;
  dnnl::convolution_forward prim_;
  memory weights_, bias_;
};

// The backend's kernel for this convolution. kAuto's rule: oneDNN, unless
// what oneDNN would run is one of its reference loops (or it refuses the
// layer) and XNNPACK takes it. Measured: on x86-64 oneDNN 2.6 has a jit
// kernel for every convolution and is faster on every distinct shape of the
// zoo models, 1.06-3.5x against Debian 12's XNNPACK (whose AVX2 GEMM spills
// an accumulator), depthwise ones included (bench/conv_backend_bench.cc,
// BENCHMARKS.md "Choosing the backend"); on aarch64 without Arm's compute
// library, oneDNN 2.6 runs every convolution but SVE's depthwise ones as
// "gemm:ref" (ONEDNN_VERBOSE under qemu, Cortex-A72 and SVE CPUs alike),
// where XNNPACK has NEON kernels. kXnnpack asks for XNNPACK, and falls back
// to oneDNN where XNNPACK refuses the shape or activation (tested: a Clip
// of an empty range).
std::unique_ptr<Kernel> MakeConv(const Layer& l, const Shape& x, const std::vector<float>& weights,
                                 const std::vector<float>& bias, const ConvActivation* activation,
                                 const KernelContext& ctx) {
  const auto xnnpack = [&]() -> std::unique_ptr<Kernel> {
    if (!XnnpackAvailable()) return nullptr;
    try {
      return MakeXnnpackConvKernel(l, x, weights, bias, activation, ctx);
    } catch (const std::runtime_error&) {  // a shape or activation it refuses
      return nullptr;
    }
  };
  if (ctx.backend == EngineBackend::kXnnpack) {
    if (auto k = xnnpack()) return k;
  }
  std::unique_ptr<ConvKernel> onednn;
  try {
    onednn = std::make_unique<ConvKernel>(l, x, weights, bias, activation, ctx);
  } catch (const dnnl::error&) {
    if (ctx.backend == EngineBackend::kAuto) {
      if (auto k = xnnpack()) return k;
    }
    throw;
  }
  if (ctx.backend == EngineBackend::kAuto && onednn->reference()) {
    if (auto k = xnnpack()) return k;
  }
  return onednn;
}

// MakeConv of the convolution without the kernel taps that read only zero
// padding (ReadingConvWindow), its weights cut alike.
std::unique_ptr<Kernel> MakeConvReadingTaps(const Layer& l, const Shape& x, const std::vector<float>& weights,
                                            const std::vector<float>& bias, const ConvActivation* activation,
                                            const KernelContext& ctx) {
  const ConvWindow w = ReadingConvWindow(l, x);
  if (!w.trimmed) return MakeConv(l, x, weights, bias, activation, ctx);
  Layer t;
  t.kind = l.kind, t.name = l.name, t.group = l.group, t.out_channels = l.out_channels;
  t.stride_h = l.stride_h, t.stride_w = l.stride_w, t.output_shape = l.output_shape;
  t.kernel_h = w.kernel_h, t.kernel_w = w.kernel_w, t.dilation_h = w.dilation_h, t.dilation_w = w.dilation_w;
  t.pad_top = w.pad_top, t.pad_left = w.pad_left, t.pad_bottom = w.pad_bottom, t.pad_right = w.pad_right;
  const int64_t planes = static_cast<int64_t>(weights.size()) / (int64_t{l.kernel_h} * l.kernel_w);  // oc * ic/group
  std::vector<float> cut;
  cut.reserve(planes * w.kernel_h * w.kernel_w);
  for (int64_t p = 0; p < planes; ++p) {
    for (int i = w.first_row; i < w.first_row + w.kernel_h; ++i) {
      const float* row = weights.data() + (p * l.kernel_h + i) * l.kernel_w + w.first_col;
      cut.insert(cut.end(), row, row + w.kernel_w);
    }
  }
  return MakeConv(t, x, cut, bias, activation, ctx);
}

}  // namespace

std::unique_ptr<Kernel> MakeConvKernel(Layer& layer, const std::vector<Shape>& in, const KernelContext& ctx) {
  static const std::vector<float> kNoBias;
  auto k = MakeConvReadingTaps(layer, in[0], layer.weights[0].data,
                               layer.weights.size() > 1 ? layer.weights[1].data : kNoBias, nullptr, ctx);
  layer.weights.clear();
  return k;
}

uint64_t ConvKernelExtraBytes(const Layer& layer, const Shape& in, const KernelContext& ctx) {
  const ConvWindow w = ReadingConvWindow(layer, in);  // what MakeConvReadingTaps builds
  Layer g;
  g.group = layer.group, g.out_channels = layer.out_channels, g.output_shape = layer.output_shape;
  g.stride_h = layer.stride_h, g.stride_w = layer.stride_w;
  g.kernel_h = w.kernel_h, g.kernel_w = w.kernel_w, g.dilation_h = w.dilation_h, g.dilation_w = w.dilation_w;
  if (!ctx.winograd || !HasAvx512() || !WinogradPays(g, in)) return 0;  // where oneDNN 2.6 has Winograd
  // XNNPACK, asked for, takes a plain 3x3 convolution (MakeConv falls back
  // to oneDNN only for an activation or shape it refuses: not these) and
  // keeps no tables.
  if (ctx.backend == EngineBackend::kXnnpack && XnnpackAvailable()) return 0;
  // F(4x4, 3x3), the larger of oneDNN's two, keeps a 6x6 tile for each 3x3
  // kernel; channels are whole 16s here, so nothing is padded.
  return static_cast<uint64_t>(36 - 9) * static_cast<uint64_t>(in[1]) * static_cast<uint64_t>(layer.out_channels) *
         sizeof(float);
}

std::unique_ptr<Kernel> MakeFusedConvKernel(const Layer& conv, const std::vector<const Layer*>& followers,
                                            const Shape& in, const KernelContext& ctx) {
  const int64_t oc = conv.out_channels;
  std::vector<float> w = conv.weights[0].data;
  std::vector<float> b = conv.weights.size() > 1 ? conv.weights[1].data : std::vector<float>(oc, 0.0f);
  const int64_t per_channel = static_cast<int64_t>(w.size()) / oc;
  ConvActivation activation{dnnl::algorithm::undef, 0, 0};
  for (const Layer* f : followers) {
    if (f->kind == LayerKind::kBatchNorm || f->kind == LayerKind::kScale) {
      const auto &gamma = f->weights[0].data, &beta = f->weights[1].data, &mean = f->weights[2].data,
                 &var = f->weights[3].data;
      for (int64_t c = 0; c < oc; ++c) {
        const float scale = gamma[c] / std::sqrt(var[c] + f->epsilon);
        for (int64_t i = 0; i < per_channel; ++i) w[c * per_channel + i] *= scale;
        b[c] = (b[c] - mean[c]) * scale + beta[c];
      }
    } else if (f->kind == LayerKind::kRelu) {
      activation = {dnnl::algorithm::eltwise_relu, 0, 0};
    } else if (f->kind == LayerKind::kClip) {
      activation = {dnnl::algorithm::eltwise_clip, f->clip_min, f->clip_max};
    } else if (f->kind == LayerKind::kSigmoid) {
      activation = {dnnl::algorithm::eltwise_logistic, 0, 0};
    } else if (f->kind == LayerKind::kHardSwish || f->kind == LayerKind::kHardSigmoid) {  // HardSigmoid: x * it follows
      activation = {dnnl::algorithm::eltwise_hardswish, 0, 0};
    } else if (f->kind == LayerKind::kMul && activation.algorithm == dnnl::algorithm::eltwise_logistic) {
      activation = {dnnl::algorithm::eltwise_swish, 1, 0};  // x * sigmoid(x)
    }
  }
  Layer geometry = conv;
  geometry.weights.clear();
  geometry.output_shape = followers.back()->output_shape;
  const bool has_activation = activation.algorithm != dnnl::algorithm::undef;
  return MakeConvReadingTaps(geometry, in, w, b, has_activation ? &activation : nullptr, ctx);
}

}  // namespace ionn
