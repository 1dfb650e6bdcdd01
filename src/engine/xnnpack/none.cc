// A build without XNNPACK (no libxnnpack-dev): the auto backend keeps
// oneDNN everywhere and --backend xnnpack is refused (Engine::Create).
#include <stdexcept>

#include "xnnpack.h"

namespace ionn {

bool XnnpackAvailable() { return false; }

std::unique_ptr<Kernel> MakeXnnpackConvKernel(const Layer&, const Shape&, const std::vector<float>&,
                                              const std::vector<float>&, const ConvActivation*, const KernelContext&) {
  throw std::runtime_error("this build has no XNNPACK");
}

}  // namespace ionn
