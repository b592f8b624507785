# Cross-building execflow for arm64 (aarch64) on an x86-64 Debian machine:
#
#   scripts/install-deps.sh arm64                     # the cross compiler, qemu-system-aarch64
#   cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
#         -DEXECFLOW_ARM64_SYSROOT=$(scripts/arm64-sysroot.sh)
#   cmake --build build-arm64 -j"$(nproc)"
#
# Debian's cross compiler (g++-aarch64-linux-gnu) compiles and links against a sysroot
# that holds the arm64 -dev packages (scripts/arm64-sysroot.sh makes it). The BPF
# objects are compiled for arm64 too (cmake/BpfObject.cmake: __TARGET_ARCH_arm64 and
# the sysroot's asm headers); bpftool, which writes the skeletons, runs on the build
# machine.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

set(EXECFLOW_ARM64_SYSROOT "" CACHE PATH
    "arm64 root folder with execflow's -dev packages (scripts/arm64-sysroot.sh)")
if(NOT EXISTS ${EXECFLOW_ARM64_SYSROOT}/usr/include/bpf/libbpf.h)
  message(FATAL_ERROR "no arm64 sysroot at ${EXECFLOW_ARM64_SYSROOT}: run scripts/arm64-sysroot.sh")
endif()
set(CMAKE_SYSROOT ${EXECFLOW_ARM64_SYSROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# pkg-config reads the sysroot's .pc files only (FindPkgConfig prefixes CMAKE_SYSROOT).
set(ENV{PKG_CONFIG_LIBDIR}
    "${CMAKE_SYSROOT}/usr/lib/aarch64-linux-gnu/pkgconfig:${CMAKE_SYSROOT}/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_SYSROOT_DIR} ${CMAKE_SYSROOT})
