// Internal to the engine: one compiled layer. Kernels are made once by
// MakeKernel (all checks and weight preparation happen there) and run many
// times without checks; Run is const and thread-safe.
#pragma once

#include <memory>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "ionn/engine.h"

namespace ionn {

struct KernelContext {
  dnnl::engine cpu;
};

class Kernel {
 public:
  virtual ~Kernel() = default;
  // `in` holds one tensor per layer input with the shapes given to the
  // factory; `out` is already sized to the layer's output shape.
  virtual void Run(const std::vector<const Tensor*>& in, Tensor* out, dnnl::stream& stream) const = 0;
};

// One factory per layer kind (kernels/<kind>.cc). `layer` may be moved
// from: kernels take its weights.
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

// Plain NCHW (or NC) memory descriptor of a shape.
dnnl::memory::desc PlainDesc(const Shape& shape);

}  // namespace ionn
