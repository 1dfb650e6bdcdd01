// Internal to the engine: one compiled layer. Kernels are made once by
// MakeKernel (all checks and weight preparation happen there) and run many
// times without checks; Run is const and thread-safe.
#pragma once

#include <memory>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "ionn/engine.h"

// Loops of our own kernels compiled for AVX-512 and AVX2 as well as the
// baseline, picked when the program loads (GCC's function multiversioning):
// one binary, and wide vectors where the CPU has them.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define IONN_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define IONN_VECTOR_CLONES
#endif

namespace ionn {

struct KernelContext {
  dnnl::engine cpu;
  bool winograd = true;  // EngineOptions::winograd
  int threads = 1;       // EngineOptions::threads (XNNPACK's pool; oneDNN reads OpenMP's)
  EngineBackend backend = EngineBackend::kAuto;  // EngineOptions::backend
};

class Kernel {
 public:
  virtual ~Kernel() = default;
  // `in` holds one tensor per layer input with the shapes given to the
  // factory; `out` is already sized to the layer's output shape.
  virtual void Run(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream& stream) const = 0;

  // Kernels that compute in a blocked activation layout of their own
  // (convolutions) expose it, so that a tensor passed from one such kernel
  // to the next can skip the reorders to and from NCHW. Null: plain only.
  virtual const dnnl::memory::desc* native_src() const { return nullptr; }
  // Element-wise kernels (ReLU, add) compute the same in any layout shared
  // by all their inputs, padding included; Run then gets buffers of that size.
  virtual bool elementwise() const { return false; }
  virtual const dnnl::memory::desc* native_dst() const { return nullptr; }
  // Kernels that also compute with their tensors in dense NHWC ("channels
  // last", the layout oneDNN's convolutions pick on AVX-512) say so, so that
  // a tensor stays in it from one convolution to the next through pooling,
  // concatenation, slices and broadcasting arithmetic. RunChannelsLast gets
  // every input and the output in NHWC. A tensor of one pixel or one channel
  // (after numpy's alignment to rank 4, for a broadcast operand of lower
  // rank) has the same bytes in both layouts and is read as it is.
  virtual bool channels_last() const { return false; }
  virtual void RunChannelsLast(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream& stream) const {
    (void)in, (void)out, (void)stream;
  }
  // Which library computes it: "onednn", "xnnpack", or "ionn" (our own loops).
  virtual const char* backend() const { return "ionn"; }
  // As Run, with the single input and/or the output in the native layout.
  virtual void RunNative(const float* src, bool src_native, float* dst, bool dst_native, dnnl::stream& stream) const {
    (void)src, (void)src_native, (void)dst, (void)dst_native, (void)stream;
  }
};

// One factory per layer kind (kernels/<kind>.cc). `layer` may be moved
// from: kernels take its weights.
using KernelFactory = std::unique_ptr<Kernel> (*)(Layer& layer, const std::vector<Shape>& in, const KernelContext& ctx);
// The kernel of a kind in IONN_OP_KINDS (k<Kind>Kernel, defined in
// kernels/<kind>.cc): its factory, and the bytes a kernel holds beyond the
// layer's weights (tables; Engine::KernelExtraBytes), nullptr for none.
struct KernelEntry {
  KernelFactory make;
  uint64_t (*extra_bytes)(const Layer& layer, const std::vector<Shape>& in);
};
#define IONN_DECLARE_KERNEL(e, onnx, caffe) extern const KernelEntry e##Kernel;
IONN_OP_KINDS(IONN_DECLARE_KERNEL)
#undef IONN_DECLARE_KERNEL
std::unique_ptr<Kernel> MakeConvKernel(Layer& layer, const std::vector<Shape>& in, const KernelContext& ctx);
std::unique_ptr<Kernel> MakeFullyConnectedKernel(Layer& layer, const std::vector<Shape>& in, const KernelContext& ctx);
std::unique_ptr<Kernel> MakeLrnKernel(Layer& layer, const std::vector<Shape>& in, const KernelContext& ctx);
std::unique_ptr<Kernel> MakePoolingKernel(Layer& layer, const std::vector<Shape>& in, const KernelContext& ctx);
std::unique_ptr<Kernel> MakeActivationKernel(Layer& layer, const std::vector<Shape>& in, const KernelContext& ctx);
std::unique_ptr<Kernel> MakeBatchNormKernel(Layer& layer, const std::vector<Shape>& in, const KernelContext& ctx);
std::unique_ptr<Kernel> MakeConcatKernel(Layer& layer, const std::vector<Shape>& in, const KernelContext& ctx);
std::unique_ptr<Kernel> MakeAddKernel(Layer& layer, const std::vector<Shape>& in, const KernelContext& ctx);
std::unique_ptr<Kernel> MakeSoftmaxKernel(Layer& layer, const std::vector<Shape>& in, const KernelContext& ctx);
std::unique_ptr<Kernel> MakeCopyKernel(Layer& layer, const std::vector<Shape>& in, const KernelContext& ctx);
std::unique_ptr<Kernel> MakeSigmoidKernel(Layer& layer, const std::vector<Shape>& in, const KernelContext& ctx);
std::unique_ptr<Kernel> MakeBinaryKernel(Layer& layer, const std::vector<Shape>& in, const KernelContext& ctx);
// The mean of each channel plane of NCHW x, as [N, C, 1, 1] or [N, C] (the
// same values): GlobalAveragePool and the spatial ReduceMean.
std::unique_ptr<Kernel> MakeSpatialMeanKernel(const Shape& x);
std::unique_ptr<Kernel> MakeTransposeKernel(Layer& layer, const std::vector<Shape>& in, const KernelContext& ctx);
std::unique_ptr<Kernel> MakePadKernel(Layer& layer, const std::vector<Shape>& in, const KernelContext& ctx);
std::unique_ptr<Kernel> MakeSliceKernel(Layer& layer, const std::vector<Shape>& in, const KernelContext& ctx);

// An activation a convolution applies to its output (a oneDNN post-op).
struct ConvActivation {
  dnnl::algorithm algorithm;
  float alpha, beta;
};

// A convolution with the batch norms and scales that follow it folded into
// its weights and a trailing activation as a post-op (ReLU, Clip, Sigmoid,
// HardSwish, or SiLU and hard swish written as x * Sigmoid(x) and
// x * HardSigmoid(x)); copies the weights.
std::unique_ptr<Kernel> MakeFusedConvKernel(const Layer& conv, const std::vector<const Layer*>& followers,
                                            const Shape& in, const KernelContext& ctx);

// What MakeConvKernel's kernel for `layer` holds beyond its weights
// (Engine::KernelExtraBytes).
uint64_t ConvKernelExtraBytes(const Layer& layer, const Shape& in, const KernelContext& ctx);

// A batch norm (or scale) and the ReLU after it, in one pass.
std::unique_ptr<Kernel> MakeBatchNormReluKernel(Layer& layer, const Shape& in, const KernelContext& ctx);

// ShuffleNet's channel shuffle of `groups` groups (a Reshape, Transpose and
// Reshape): output channel j * groups + i is input channel i * C/groups + j.
std::unique_ptr<Kernel> MakeChannelShuffleKernel(const Shape& x, int64_t groups, const KernelContext& ctx);

// Whether oneDNN chose one of its reference loops ("ref:", "simple_...",
// "gemm:ref")
// for `pd` on this CPU: many times slower than its jit kernels.
bool IsReference(const dnnl::primitive_desc_base& pd);

// How far past a tensor's last byte a kernel may read (XNNPACK's
// XNN_EXTRA_BYTES: its microkernels load whole vectors): the engine's
// intermediate tensors and ThreadScratch's buffers have this much room
// behind them.
constexpr size_t kReadSlackBytes = 16;

// A 64-byte aligned buffer of at least `bytes` (and kReadSlackBytes behind
// them), one per slot (0-3) and thread, grown as needed and reused by later
// calls on the same thread.
float* ThreadScratch(int slot, size_t bytes);

// A 4-D tensor in NHWC seen as a plain tensor: its shape [N, H, W, C], and
// where NCHW axis `axis` went (C to 3, H to 1, W to 2).
Shape ChannelsLastShape(const Shape& nchw);
int ChannelsLastAxis(int axis);

// Plain NCHW (or NC) memory descriptor of a shape.
dnnl::memory::desc PlainDesc(const Shape& shape);

}  // namespace ionn
