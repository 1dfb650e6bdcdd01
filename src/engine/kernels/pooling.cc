// Max and average pooling (global average pooling runs the per-plane mean
// kernel, reduce_mean.cc), ONNX semantics: ceil mode, and
// an average divisor that counts padding (count_include_pad) but never the
// part of a ceil-mode window past the padded input, as Caffe and onnxruntime.
//
// oneDNN's pooling computes every window; a ceil-mode window is handed to it
// as extra padding on the far side. Where that would change the result (the
// average's divisor over such a window, or a window with no input element
// at all) the plain loop below recomputes those outputs: only the last row
// or column. It runs in NCHW or, for a tensor kept channels last, NHWC.
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

class PoolingKernel : public Kernel {
 public:
  PoolingKernel(const Layer& l, const Shape& x, const KernelContext& ctx) : l_(l), x_(x), cpu_(ctx.cpu) {
    const int64_t OH = l.output_shape[2], OW = l.output_shape[3];
    const int64_t extent_h = (l.kernel_h - 1) * l.dilation_h + 1, extent_w = (l.kernel_w - 1) * l.dilation_w + 1;
    // oneDNN's far-side padding: what makes its output size ONNX's.
    const int64_t far_h = std::max<int64_t>((OH - 1) * l.stride_h + extent_h - x[2] - l.pad_top, l.pad_bottom);
    const int64_t far_w = std::max<int64_t>((OW - 1) * l.stride_w + extent_w - x[3] - l.pad_left, l.pad_right);
    const bool is_max = l.kind == LayerKind::kMaxPool;
    // Outputs oneDNN would get wrong: recomputed by the plain loop.
    auto wrong = [&](int64_t o, int64_t stride, int64_t pad_a, int64_t pad_b, int64_t extent, int64_t in) {
      const int64_t begin = o * stride - pad_a;
      const bool empty = begin + extent <= 0 || begin >= in;
      const bool past_padding = begin + extent > in + pad_b;  // ceil mode's extra part of the window
      return empty || (!is_max && l.count_include_pad && past_padding);
    };
    for (int64_t oh = 0; oh < OH; ++oh) {
      if (wrong(oh, l.stride_h, l.pad_top, l.pad_bottom, extent_h, x[2])) fix_rows_.push_back(oh);
    }
    for (int64_t ow = 0; ow < OW; ++ow) {
      if (wrong(ow, l.stride_w, l.pad_left, l.pad_right, extent_w, x[3])) fix_cols_.push_back(ow);
    }
    const dnnl::algorithm alg = is_max ? dnnl::algorithm::pooling_max
                                : l.count_include_pad ? dnnl::algorithm::pooling_avg_include_padding
                                                      : dnnl::algorithm::pooling_avg_exclude_padding;
    // A dilated average keeps the plain loop's divisor (the window's extent).
    naive_only_ = !is_max && (l.dilation_h > 1 || l.dilation_w > 1);
    for (int layout = 0; layout < 2 && !naive_only_; ++layout) {
      const memory::format_tag tag = layout == 0 ? memory::format_tag::nchw : memory::format_tag::nhwc;
      const memory::desc src(x, memory::data_type::f32, tag), dst(l.output_shape, memory::data_type::f32, tag);
      dnnl::pooling_v2_forward::desc d(dnnl::prop_kind::forward_inference, alg, src, dst, {l.stride_h, l.stride_w},
                                       {l.kernel_h, l.kernel_w}, {l.dilation_h - 1, l.dilation_w - 1},
                                       {l.pad_top, l.pad_left}, {far_h, far_w});
      dnnl::primitive_attr attr;
      attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // see conv.cc
      try {
        pd_[layout] = dnnl::pooling_v2_forward::primitive_desc(d, attr, cpu_);
        prim_[layout] = dnnl::pooling_v2_forward(pd_[layout]);
      } catch (const dnnl::error&) {
        naive_only_ = true;  // a window oneDNN refuses (padding wider than it): the plain loop does it all
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

  // One output by the definition: the reference the engine tests hold oneDNN to.
  float Window(const float* plane, const Strides& si, int64_t oh, int64_t ow) const {
    const int64_t H = x_[2], W = x_[3];
    const bool is_max = l_.kind == LayerKind::kMaxPool;
    const int64_t h0 = oh * l_.stride_h - l_.pad_top;
    const int64_t h_end = std::min<int64_t>(h0 + (l_.kernel_h - 1) * l_.dilation_h + 1, H + l_.pad_bottom);
    const int64_t w0 = ow * l_.stride_w - l_.pad_left;
    const int64_t w_end = std::min<int64_t>(w0 + (l_.kernel_w - 1) * l_.dilation_w + 1, W + l_.pad_right);
    float acc = is_max ? -std::numeric_limits<float>::infinity() : 0.0f;
    int64_t inside = 0;
    for (int64_t h = h0; h < h_end; h += l_.dilation_h) {
      if (h < 0 || h >= H) continue;
      for (int64_t w = w0; w < w_end; w += l_.dilation_w) {
        if (w < 0 || w >= W) continue;
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
  std::vector<int64_t> fix_rows_, fix_cols_;  // outputs the plain loop computes
};

}  // namespace

std::unique_ptr<Kernel> MakePoolingKernel(Layer& layer, const std::vector<Shape>& in, const KernelContext& ctx) {
  return std::make_unique<PoolingKernel>(layer, in[0], ctx);
}

}  // namespace ionn
