// Internal to the engine: the layers XNNPACK computes (the second backend,
// beside oneDNN; which one runs a convolution: MakeConv in kernels/conv.cc). XNNPACK computes in NHWC; its kernels show
// NHWC as their native layout, so a tensor passes in it from one convolution to the next whichever backend runs each.
// Without XNNPACK in the build (no libxnnpack-dev), XnnpackAvailable() is false and nothing here is called.
#pragma once

#include <memory>
#include <vector>

#include "../kernel.h"

namespace ionn {

// Whether this build has XNNPACK and it initialised on this CPU.
bool XnnpackAvailable();

// A convolution run by XNNPACK: `weights` [oc, ic/g, kh, kw] and `bias`
// (empty: none) as for oneDNN's, `activation` (null: none) applied to the
// output. Throws std::runtime_error where XNNPACK refuses the shape.
std::unique_ptr<Kernel> MakeXnnpackConvKernel(const Layer& geometry, const Shape& in, const std::vector<float>& weights,
                                              const std::vector<float>& bias, const ConvActivation* activation,
                                              const KernelContext& ctx);

}  // namespace ionn
