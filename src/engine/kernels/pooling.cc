// Max and average pooling (global average pooling runs the per-plane mean
// kernel, reduce_mean.cc), ONNX semantics: ceil mode, and
// an average divisor that counts padding (count_include_pad) but never the
// part of a ceil-mode window past the padded input, as Caffe and onnxruntime.
//
// oneDNN's pooling computes the windows; a ceil-mode window is handed to it
// as extra padding on the far side. Where that would change the result (the
// average's divisor over such a window, or a window whose taps all fall in
// padding) the plain loop below recomputes those outputs: whole rows and
// columns at the borders. Where oneDNN refuses a window (padding as wide as
// it, say), or for a dilated average, the plain loop computes everything.
// It runs in NCHW or, for a tensor kept channels last, NHWC.
#include <algorithm>
#include <limits>

#include "../kernel.h"

namespace ionn {
namespace {

using dnnl::memory;

// Element strides of a 4-D tensor: image, channel, row, column.
struct Strides {
  int64_t n, c, h, w;
};

Strides Plain(const Shape& s) { return {s[1] * s[2] * s[3], s[2] * s[3], s[3], 1}; }
Strides ChannelsLast(const Shape& s) { return {s[1] * s[2] * s[3], 1, s[3] * s[1], s[1]}; }

// A window's span: its first tap to its last.
int64_t Extent(int64_t kernel, int64_t dilation) { return (kernel - 1) * dilation + 1; }

class PoolingKernel : public Kernel {
 public:
  PoolingKernel(const Layer& l, const Shape& x, const KernelContext& ctx) : l_(l), x_(x), cpu_(ctx.cpu) {
    const int64_t OH = l.output_shape[2], OW = l.output_shape[3];
    const int64_t extent_h = Extent(l.kernel_h, l.dilation_h), extent_w = Extent(l.kernel_w, l.dilation_w);
    const bool is_max = l.kind == LayerKind::kMaxPool;
    // Outputs oneDNN would get wrong: recomputed by the plain loop.
    auto wrong = [&](int64_t o, int64_t stride, int64_t pad_a, int64_t pad_b, int64_t kernel, int64_t dilation,
                     int64_t in) {
      const int64_t begin = o * stride - pad_a;
      const int64_t first_tap = begin >= 0 ? 0 : (-begin + dilation - 1) / dilation;  // the first tap at >= 0
      const bool empty = first_tap >= kernel || begin + first_tap * dilation >= in;
      const bool past_padding = begin + Extent(kernel, dilation) > in + pad_b;  // ceil mode's extra part
      return empty || (!is_max && l.count_include_pad && past_padding);
    };
    for (int64_t oh = 0; oh < OH; ++oh) {
      if (wrong(oh, l.stride_h, l.pad_top, l.pad_bottom, l.kernel_h, l.dilation_h, x[2])) fix_rows_.push_back(oh);
    }
    for (int64_t ow = 0; ow < OW; ++ow) {
      if (wrong(ow, l.stride_w, l.pad_left, l.pad_right, l.kernel_w, l.dilation_w, x[3])) fix_cols_.push_back(ow);
    }
    // oneDNN's far-side padding: as near the layer's as gives ONNX's output
    // size (oneDNN rounds down: any of `stride` values does).
    auto far = [](int64_t out, int64_t stride, int64_t extent, int64_t in, int64_t pad_a, int64_t pad_b) {
      const int64_t least = (out - 1) * stride + extent - in - pad_a;
      return std::min(std::max({pad_b, least, int64_t{0}}), least + stride - 1);
    };
    const int64_t far_h = far(OH, l.stride_h, extent_h, x[2], l.pad_top, l.pad_bottom);
    const int64_t far_w = far(OW, l.stride_w, extent_w, x[3], l.pad_left, l.pad_right);
    const dnnl::algorithm alg = is_max ? dnnl::algorithm::pooling_max
                                : l.count_include_pad ? dnnl::algorithm::pooling_avg_include_padding
                                                      : dnnl::algorithm::pooling_avg_exclude_padding;
    // A dilated average keeps the plain loop's divisor (the window's extent).
    naive_only_ = (!is_max && (l.dilation_h > 1 || l.dilation_w > 1)) || far_h < 0 || far_w < 0;
    for (int layout = 0; layout < 2 && !naive_only_; ++layout) {
      const memory::format_tag tag = layout == 0 ? memory::format_tag::nchw : memory::format_tag::nhwc;
      try {
        const memory::desc src(x, memory::data_type::f32, tag), dst(l.output_shape, memory::data_type::f32, tag);
        dnnl::pooling_v2_forward::desc d(dnnl::prop_kind::forward_inference, alg, src, dst, {l.stride_h, l.stride_w},
                                         {l.kernel_h, l.kernel_w}, {l.dilation_h - 1, l.dilation_w - 1},
                                         {l.pad_top, l.pad_left}, {far_h, far_w});
        dnnl::primitive_attr attr;
        attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // see conv.cc
        pd_[layout] = dnnl::pooling_v2_forward::primitive_desc(d, attr, cpu_);
        prim_[layout] = dnnl::pooling_v2_forward(pd_[layout]);
      } catch (const dnnl::error&) {
        naive_only_ = true;  // a window oneDNN refuses: the plain loop does it all
      }
    }
    // Where oneDNN pools plain NCHW only with a reference loop on this CPU
    // (`simple_nchw` without AVX-512: 0.5 ms of AlexNet's pool5 on AVX2),
    // the plain path pools in NHWC between two reorders (jit, microseconds).
    if (!naive_only_ && IsReference(pd_[0]) && !IsReference(pd_[1])) {
      const dnnl::reorder::primitive_desc in(cpu_, pd_[0].src_desc(), cpu_, pd_[1].src_desc());
      const dnnl::reorder::primitive_desc out(cpu_, pd_[1].dst_desc(), cpu_, pd_[0].dst_desc());
      if (!IsReference(in) && !IsReference(out)) {
        to_nhwc_ = dnnl::reorder(in);
        to_nchw_ = dnnl::reorder(out);
        plain_via_nhwc_ = true;
      }
    }
    if (naive_only_) {
      fix_rows_.resize(OH), fix_cols_.clear();
      for (int64_t oh = 0; oh < OH; ++oh) fix_rows_[oh] = oh;
    }
  }
  void Run(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream& s) const override {
    Pool(0, in[0]->data.data(), out->data.data(), s);
  }
  bool channels_last() const override { return true; }
  const char* backend() const override { return "onednn"; }
  void RunChannelsLast(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream& s) const override {
    Pool(1, in[0]->data.data(), out->data.data(), s);
  }

 private:
  void Pool(int layout, const float* src, float* dst, dnnl::stream& s) const {
    if (!naive_only_) Dnnl(layout, src, dst, s);
    if (fix_rows_.empty() && fix_cols_.empty()) return;
    const Strides si = layout == 0 ? Plain(x_) : ChannelsLast(x_);
    const Strides so = layout == 0 ? Plain(l_.output_shape) : ChannelsLast(l_.output_shape);
    const int64_t OH = l_.output_shape[2], OW = l_.output_shape[3];
    const int64_t planes = x_[0] * x_[1];
#pragma omp parallel for if (naive_only_)
    for (int64_t p = 0; p < planes; ++p) {
      const int64_t n = p / x_[1], c = p % x_[1];
      const float* plane = src + n * si.n + c * si.c;
      float* out = dst + n * so.n + c * so.c;
      for (int64_t oh : fix_rows_) {
        for (int64_t ow = 0; ow < OW; ++ow) out[oh * so.h + ow * so.w] = Window(plane, si, oh, ow);
      }
      for (int64_t ow : fix_cols_) {
        for (int64_t oh = 0; oh < OH; ++oh) out[oh * so.h + ow * so.w] = Window(plane, si, oh, ow);
      }
    }
  }

  void Dnnl(int layout, const float* src, float* dst, dnnl::stream& s) const {
    if (layout == 0 && plain_via_nhwc_) {
      float* x = ThreadScratch(0, pd_[1].src_desc().get_size());
      float* y = ThreadScratch(1, pd_[1].dst_desc().get_size());
      to_nhwc_.execute(s, {{DNNL_ARG_FROM, memory(pd_[0].src_desc(), cpu_, const_cast<float*>(src))},
                           {DNNL_ARG_TO, memory(pd_[1].src_desc(), cpu_, x)}});
      Dnnl(1, x, y, s);
      to_nchw_.execute(s, {{DNNL_ARG_FROM, memory(pd_[1].dst_desc(), cpu_, y)},
                           {DNNL_ARG_TO, memory(pd_[0].dst_desc(), cpu_, dst)}});
      s.wait();
      return;
    }
    const auto& pd = pd_[layout];
    memory src_mem(pd.src_desc(), cpu_, const_cast<float*>(src));
    memory dst_mem(pd.dst_desc(), cpu_, dst);
    std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, src_mem}, {DNNL_ARG_DST, dst_mem}};
    memory ws;
    if (pd.workspace_desc().get_size() > 0) ws = memory(pd.workspace_desc(), cpu_), args[DNNL_ARG_WORKSPACE] = ws;
    args[DNNL_ARG_SCRATCHPAD] = memory(pd.scratchpad_desc(), cpu_, ThreadScratch(2, pd.scratchpad_desc().get_size()));
    prim_[layout].execute(s, args);
    s.wait();
  }

  // One output by the definition (engine_test holds both paths to a naive reference).
  float Window(const float* plane, const Strides& si, int64_t oh, int64_t ow) const {
    const int64_t H = x_[2], W = x_[3];
    const bool is_max = l_.kind == LayerKind::kMaxPool;
    const int64_t h0 = oh * l_.stride_h - l_.pad_top;
    const int64_t h_end = std::min<int64_t>(h0 + Extent(l_.kernel_h, l_.dilation_h), H + l_.pad_bottom);
    const int64_t w0 = ow * l_.stride_w - l_.pad_left;
    const int64_t w_end = std::min<int64_t>(w0 + Extent(l_.kernel_w, l_.dilation_w), W + l_.pad_right);
    float acc = is_max ? -std::numeric_limits<float>::infinity() : 0.0f;
    int64_t inside = 0;
    // The taps inside the input only (a hostile window may span billions).
    const int64_t dh = l_.dilation_h, dw = l_.dilation_w;
    const int64_t h_first = h0 >= 0 ? h0 : h0 + (-h0 + dh - 1) / dh * dh;
    const int64_t w_first = w0 >= 0 ? w0 : w0 + (-w0 + dw - 1) / dw * dw;
    for (int64_t h = h_first; h < std::min(h_end, H); h += dh) {
      for (int64_t w = w_first; w < std::min(w_end, W); w += dw) {
        const float v = plane[h * si.h + w * si.w];
        acc = is_max ? std::max(acc, v) : acc + v;
        ++inside;
      }
    }
    if (is_max) return acc;
    const int64_t window = l_.count_include_pad ? (h_end - h0) * (w_end - w0) : inside;
    return window > 0 ? acc / static_cast<float>(window) : 0.0f;
  }

  Layer l_;  // attributes only (pooling has no weights)
  Shape x_;
  dnnl::engine cpu_;
  dnnl::pooling_v2_forward::primitive_desc pd_[2];  // NCHW, NHWC
  dnnl::pooling_v2_forward prim_[2];
  bool naive_only_ = false;
  bool plain_via_nhwc_ = false;  // NCHW pooled in NHWC (to_nhwc_, prim_[1], to_nchw_)
  dnnl::reorder to_nhwc_, to_nchw_;
  std::vector<int64_t> fix_rows_, fix_cols_;  // outputs the plain loop computes
};

}  // namespace

std::unique_ptr<Kernel> MakePoolingKernel(Layer& layer, const std::vector<Shape>& in, const KernelContext& ctx) {
  return std::make_unique<PoolingKernel>(layer, in[0], ctx);
}

}  // namespace ionn
