// Numbers for tables: fixed-point where that stays short, else scientific,
// so that a huge time (a cost graph with 1e300 ms) keeps its row readable
// instead of printing 300 digits.
#pragma once

#include <cmath>
#include <cstdio>
#include <string>

namespace ionn {

// `decimals` digits after the point for |v| < 1e12 (and NaN, inf), else
// six significant digits ("1.86051e+308").
inline std::string Fixed(double v, int decimals) {
  char buf[64];
  if (std::isfinite(v) && std::fabs(v) >= 1e12) {
    std::snprintf(buf, sizeof buf, "%.6g", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  }
  return buf;
}

}  // namespace ionn
