#include <cmath>
#include <limits>

#include "ionn/plan.h"

namespace ionn {

double Efficiency(double gain_ms, double upload_ms) {
  constexpr double kEps = 1e-9;
  if (upload_ms > 0) return gain_ms / upload_ms;
  if (gain_ms > kEps) return std::numeric_limits<double>::infinity();
  if (gain_ms < -kEps) return -std::numeric_limits<double>::infinity();
  return 0;
}

}  // namespace ionn
