# The shipped binaries (execflow_exporter, lib/execflow/libssl.so and libcrypto.so) are
# built the way Debian's dpkg-buildflags (hardening=+all) builds a daemon that runs as
# root: stack protector on every function with an array or an address-taken local,
# fortified libc calls (glibc checks sizes the compiler knows; level 3 also sizes it
# knows only at run time: g++ 12, glibc 2.36), a position-independent executable (ASLR
# for its own code), relocations resolved at start-up and then read-only (full RELRO:
# the GOT cannot be overwritten), and no executable stack. Everything else built here
# (tests) gets the same flags, so tests run the code as shipped.
# tests/binary/hardened_elf.sh checks the result (CTest: hardened_elf).
#
# _FORTIFY_SOURCE needs optimisation (glibc warns without it), and is left out of
# sanitizer builds: ASan checks every access itself, and the __*_chk variants would
# abort before ASan names the bad access.
set(CMAKE_POSITION_INDEPENDENT_CODE ON)
include(CheckPIESupported)
check_pie_supported(LANGUAGES C CXX)  # so that POSITION_INDEPENDENT_CODE links with -pie

add_compile_options(-fstack-protector-strong)
if(NOT EXECFLOW_SANITIZE)
  add_compile_options("$<$<NOT:$<CONFIG:Debug>>:-U_FORTIFY_SOURCE;-D_FORTIFY_SOURCE=3>")
endif()
add_link_options(LINKER:-z,relro LINKER:-z,now LINKER:-z,noexecstack)

# Whether this build's binaries should pass tests/binary/hardened_elf.sh.
if(NOT EXECFLOW_SANITIZE AND NOT CMAKE_BUILD_TYPE STREQUAL "Debug")
  set(EXECFLOW_HARDENED ON)
else()
  set(EXECFLOW_HARDENED OFF)
endif()
