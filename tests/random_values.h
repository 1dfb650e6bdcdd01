// Seeded uniform values for the engine tests' weights and inputs.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace ionn {

inline std::vector<float> Random(int64_t n, std::mt19937& rng, float lo = -1, float hi = 1) {
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

}  // namespace ionn
