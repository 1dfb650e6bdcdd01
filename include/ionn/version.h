// ionn's version, recorded in every JSON report ("ionn_version") and printed
// by `ionn --version`. CMakeLists.txt checks it against project(VERSION).
#pragma once

namespace ionn {

inline constexpr const char* kVersion = "0.1.0";

}  // namespace ionn
