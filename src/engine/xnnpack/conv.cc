// Convolution (groups, depthwise, dilation) with XNNPACK, in NHWC. Weights
// are packed once, when the kernel is made; the activations a convolution
// absorbs run as XNNPACK's output clamp (ReLU, Clip) or as an XNNPACK
// element-wise operator on the output (sigmoid, hard swish, swish).
#include <pthreadpool.h>
#include <xnnpack.h>

#include <cmath>
#include <limits>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>

#include "xnnpack.h"

namespace ionn {
namespace {

static_assert(XNN_EXTRA_BYTES <= kReadSlackBytes, "XNNPACK reads further past a tensor than the engine leaves room for");

using dnnl::memory;

// XNNPACK's worker threads for a kernel made for `threads`: one pool per
// calling thread and count, kept for the thread's life (as OpenMP keeps a
// team per calling thread), so that two threads running different layers
// never wait on one pool. 1 thread: the caller's own.
pthreadpool_t Pool(int threads) {
  if (threads <= 1) return nullptr;
  struct Destroy {
    void operator()(pthreadpool_t p) const { pthreadpool_destroy(p); }
  };
  thread_local std::map<int, std::unique_ptr<struct pthreadpool, Destroy>> pools;
  auto& pool = pools[threads];
  if (!pool) pool.reset(pthreadpool_create(static_cast<size_t>(threads)));
  return pool.get();
}

void Check(xnn_status status, const char* what) {
  if (status != xnn_status_success) {
    throw std::runtime_error(std::string("XNNPACK ") + what + " failed (status " + std::to_string(status) + ")");
  }
}

// NCHW -> NHWC of a 4-D tensor [n, c, hw] (to_nhwc), or back.
void Transpose(const float* src, float* dst, int64_t n, int64_t c, int64_t hw, bool to_nhwc) {
  for (int64_t b = 0; b < n; ++b) {
    const float* s = src + b * c * hw;
    float* d = dst + b * c * hw;
    for (int64_t ch = 0; ch < c; ++ch) {
      for (int64_t p = 0; p < hw; ++p) {
        if (to_nhwc) {
          d[p * c + ch] = s[ch * hw + p];
        } else {
          d[ch * hw + p] = s[p * c + ch];
        }
      }
    }
  }
}

enum class Post { kNone, kSigmoid, kHardSwish, kSwish };

class XnnpackConvKernel : public Kernel {
 public:
  XnnpackConvKernel(const Layer& l, const Shape& x, const std::vector<float>& weights, const std::vector<float>& bias,
                    const ConvActivation* activation, const KernelContext& ctx)
      : threads_(ctx.threads), x_(x), y_(l.output_shape) {
    const int64_t g = l.group, oc = l.out_channels, ic = x[1], icg = ic / g, ocg = oc / g,
                  taps = l.kernel_h * l.kernel_w;
    // ONNX's [oc, ic/g, kh, kw] to XNNPACK's [g, oc/g, kh, kw, ic/g].
    std::vector<float> packed(weights.size());
    for (int64_t o = 0; o < oc; ++o) {
      const float* w = weights.data() + o * icg * taps;
      float* p = packed.data() + o * icg * taps;
      for (int64_t i = 0; i < icg; ++i) {
        for (int64_t t = 0; t < taps; ++t) p[t * icg + i] = w[i * taps + t];
      }
    }
    float lo = -std::numeric_limits<float>::infinity(), hi = std::numeric_limits<float>::infinity();
    if (activation) {
      switch (activation->algorithm) {
        case dnnl::algorithm::eltwise_relu:
          lo = 0;
          break;
        case dnnl::algorithm::eltwise_clip:
          lo = activation->alpha, hi = activation->beta;
          break;
        case dnnl::algorithm::eltwise_logistic:
          post_ = Post::kSigmoid;
          break;
        case dnnl::algorithm::eltwise_hardswish:
          post_ = Post::kHardSwish;
          break;
        case dnnl::algorithm::eltwise_swish:
          post_ = Post::kSwish;
          break;
        default:
          throw std::runtime_error("XNNPACK: no such activation after a convolution");
      }
    }
    if (!(lo < hi)) throw std::runtime_error("XNNPACK: a clamp needs its minimum below its maximum");
    xnn_operator_t op = nullptr;
    Check(xnn_create_convolution2d_nhwc_f32(
              static_cast<uint32_t>(l.pad_top), static_cast<uint32_t>(l.pad_right), static_cast<uint32_t>(l.pad_bottom),
              static_cast<uint32_t>(l.pad_left), static_cast<uint32_t>(l.kernel_h), static_cast<uint32_t>(l.kernel_w),
              static_cast<uint32_t>(l.stride_h), static_cast<uint32_t>(l.stride_w), static_cast<uint32_t>(l.dilation_h),
              static_cast<uint32_t>(l.dilation_w), static_cast<uint32_t>(g), static_cast<size_t>(icg),
              static_cast<size_t>(ocg), static_cast<size_t>(ic), static_cast<size_t>(oc), packed.data(),
              bias.empty() ? nullptr : bias.data(), lo, hi, 0, &op),
          "convolution");
    conv_.reset(op);
    if (post_ != Post::kNone) {
      xnn_operator_t p = nullptr;
      if (post_ == Post::kHardSwish) {
        Check(xnn_create_hardswish_nc_f32(static_cast<size_t>(oc), static_cast<size_t>(oc), static_cast<size_t>(oc), 0,
                                          &p),
              "hard swish");
      } else {
        Check(
            xnn_create_sigmoid_nc_f32(static_cast<size_t>(oc), static_cast<size_t>(oc), static_cast<size_t>(oc), 0, &p),
            "sigmoid");
      }
      post_op_.reset(p);
    }
    nhwc_src_ = memory::desc(x, memory::data_type::f32, memory::format_tag::nhwc);
    nhwc_dst_ = memory::desc(y_, memory::data_type::f32, memory::format_tag::nhwc);
  }

  void Run(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream& s) const override {
    RunNative(in[0]->data.data(), false, out->data.data(), false, s);
  }
  const memory::desc* native_src() const override { return &nhwc_src_; }
  const memory::desc* native_dst() const override { return &nhwc_dst_; }
  const char* backend() const override { return "xnnpack"; }

  void RunNative(const float* src, bool src_native, float* dst, bool dst_native, dnnl::stream&) const override {
    const int64_t n = x_[0], hw_in = x_[2] * x_[3], oc = y_[1], pixels = y_[0] * y_[2] * y_[3];
    const float* input = src;
    if (!src_native) {
      float* t = ThreadScratch(0, static_cast<size_t>(ElementCount(x_)) * sizeof(float));
      Transpose(src, t, n, x_[1], hw_in, true);
      input = t;
    }
    float* output = dst_native ? dst : ThreadScratch(1, static_cast<size_t>(ElementCount(y_)) * sizeof(float));
    {
      // An operator holds the tensors' addresses from setup to run: one run
      // at a time (a server's queries of a shared layer take turns here).
      std::lock_guard<std::mutex> lock(mu_);
      pthreadpool_t pool = Pool(threads_);
      Check(xnn_setup_convolution2d_nhwc_f32(conv_.get(), static_cast<size_t>(n), static_cast<size_t>(x_[2]),
                                             static_cast<size_t>(x_[3]), input, output, pool),
            "convolution setup");
      Check(xnn_run_operator(conv_.get(), pool), "convolution");
      if (post_ != Post::kNone) {
        // Swish: sigmoid into scratch, then x * sigmoid(x).
        float* to =
            post_ == Post::kSwish ? ThreadScratch(2, static_cast<size_t>(ElementCount(y_)) * sizeof(float)) : output;
        if (post_ == Post::kHardSwish) {
          Check(xnn_setup_hardswish_nc_f32(post_op_.get(), static_cast<size_t>(pixels), output, to, pool),
                "hard swish setup");
        } else {
          Check(xnn_setup_sigmoid_nc_f32(post_op_.get(), static_cast<size_t>(pixels), output, to, pool),
                "sigmoid setup");
        }
        Check(xnn_run_operator(post_op_.get(), pool), "activation");
        if (post_ == Post::kSwish) Multiply(output, to, static_cast<size_t>(pixels * oc));
      }
    }
    if (!dst_native) Transpose(output, dst, y_[0], oc, y_[2] * y_[3], false);
  }

 private:
  IONN_VECTOR_CLONES static void Multiply(float* x, const float* by, size_t n) {
    for (size_t i = 0; i < n; ++i) x[i] *= by[i];
  }
  struct Delete {
    void operator()(xnn_operator_t op) const { xnn_delete_operator(op); }
  };
  int threads_;
  Shape x_, y_;
  Post post_ = Post::kNone;
  std::unique_ptr<struct xnn_operator, Delete> conv_, post_op_;
  memory::desc nhwc_src_, nhwc_dst_;
  mutable std::mutex mu_;
};

}  // namespace

bool XnnpackAvailable() {
  static const bool ok = xnn_initialize(nullptr) == xnn_status_success;
  return ok;
}

std::unique_ptr<Kernel> MakeXnnpackConvKernel(const Layer& geometry, const Shape& in, const std::vector<float>& weights,
                                              const std::vector<float>& bias, const ConvActivation* activation,
                                              const KernelContext& ctx) {
  return std::make_unique<XnnpackConvKernel>(geometry, in, weights, bias, activation, ctx);
}

}  // namespace ionn
