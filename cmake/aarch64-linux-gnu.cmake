# cmake/aarch64-linux-gnu.cmake: cross-compiles sdc for 64-bit ARM Linux (AArch64, NEON) on a
# Debian x86-64 host, and runs the tests under user-mode QEMU.
#
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
#   cmake --build build-aarch64 -j2 && (cd build-aarch64 && ctest -LE slow)
#
# Needs (scripts/setup.sh installs them): gcc-aarch64-linux-gnu, qemu-user (qemu-aarch64), and the
# target's libraries from Debian's multiarch archive, "dpkg --add-architecture arm64" then
# zlib1g-dev:arm64 libpng-dev:arm64 libprotobuf-c-dev:arm64 (which bring libc6:arm64). Headers
# are the host's /usr/include (multiarch -dev packages share them); libraries and pkg-config
# files come from /usr/lib/aarch64-linux-gnu. Host tools (protoc-c, the CMake scripts) run natively.
#
# Code generation is baseline ARMv8-A, where Advanced SIMD (NEON) is always present; -march=native
# means the build machine, so CMakeLists.txt turns SDC_NATIVE off when cross-compiling. For a
# Raspberry Pi 5 (Cortex-A76) add -DCMAKE_C_FLAGS=-mcpu=cortex-a76.
#
# Tests: ctest runs each test executable through CMAKE_CROSSCOMPILING_EMULATOR, QEMU emulating a
# Cortex-A76 (the Raspberry Pi 5's core: no SVE, so glibc picks the routines it would pick there);
# tests that run the sdc command get a script that does the same (CMakeLists.txt, SDC_TEST_EXE).
# The multiarch loader (/lib/ld-linux-aarch64.so.1 of libc6:arm64) finds the multiarch libraries
# itself; without it, qemu is pointed at the cross toolchain's own libc (libc6-arm64-cross) with -L.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu) # find_library looks in /usr/lib/aarch64-linux-gnu first

# pkg-config (protobuf-c, cmake/onnx.cmake): the target's .pc files, never the host's.
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")

find_program(SDC_QEMU_AARCH64 NAMES qemu-aarch64 qemu-aarch64-static)
if(NOT SDC_QEMU_AARCH64)
  message(FATAL_ERROR "qemu-aarch64 not found: install qemu-user (scripts/setup.sh)")
endif()
if(EXISTS /lib/ld-linux-aarch64.so.1)
  set(CMAKE_CROSSCOMPILING_EMULATOR "${SDC_QEMU_AARCH64};-cpu;cortex-a76")
else()
  set(CMAKE_CROSSCOMPILING_EMULATOR "${SDC_QEMU_AARCH64};-cpu;cortex-a76;-L;/usr/aarch64-linux-gnu")
endif()
