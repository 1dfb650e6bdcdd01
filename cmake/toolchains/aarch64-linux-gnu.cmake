# Cross-building ionn for 64-bit ARM (aarch64) on a Debian amd64 host with
# Debian's cross compilers (crossbuild-essential-arm64) against a root of the
# target's Debian 12 packages made by scripts/sysroot.sh (default
# /opt/ionn-sysroot/aarch64; -DIONN_SYSROOT=DIR or the environment variable
# IONN_SYSROOT for another). protoc and grpc_cpp_plugin are the host's.
# scripts/setup.sh --target aarch64 prepares all of it; scripts/build.sh
# --target aarch64 uses this file.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
if(NOT IONN_SYSROOT)
  if(DEFINED ENV{IONN_SYSROOT})
    set(IONN_SYSROOT "$ENV{IONN_SYSROOT}")
  else()
    set(IONN_SYSROOT /opt/ionn-sysroot/aarch64)
  endif()
endif()
# try_compile projects read this file again without the cache: the
# environment carries the root to them.
set(ENV{IONN_SYSROOT} "${IONN_SYSROOT}")
if(NOT EXISTS "${IONN_SYSROOT}/usr/include/oneapi/dnnl/dnnl.hpp")
  message(FATAL_ERROR "no aarch64 root at ${IONN_SYSROOT}: run scripts/setup.sh --target aarch64")
endif()
set(CMAKE_SYSROOT "${IONN_SYSROOT}")
# Libraries, headers and CMake packages from the root only; programs from the host.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
# pkg-config (gRPC's config finds RE2 with it) reads the root's .pc files.
set(ENV{PKG_CONFIG_SYSROOT_DIR} "${IONN_SYSROOT}")
set(ENV{PKG_CONFIG_LIBDIR} "${IONN_SYSROOT}/usr/lib/aarch64-linux-gnu/pkgconfig:${IONN_SYSROOT}/usr/share/pkgconfig")
# The root's libraries at run time too: a library that links another by
# absolute path, and the tests under qemu-user (Debian's qemu-user).
set(CMAKE_EXE_LINKER_FLAGS_INIT "-Wl,-rpath-link,${IONN_SYSROOT}/usr/lib/aarch64-linux-gnu:${IONN_SYSROOT}/lib/aarch64-linux-gnu")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "${CMAKE_EXE_LINKER_FLAGS_INIT}")
# A Cortex-A72 (Raspberry Pi 4): NEON, no SVE, as the boards the client is
# for; qemu's default CPU has SVE, for which oneDNN has kernels a board lacks.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64;-cpu;cortex-a72;-L;${IONN_SYSROOT})
