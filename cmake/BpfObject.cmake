# bpf_object(<name> <source>)
#
# Compiles <source> (a bpf/*.bpf.c file) with clang -target bpf into
# ${CMAKE_CURRENT_BINARY_DIR}/bpf/<name>.bpf.o and generates its libbpf
# skeleton <name>.skel.h next to it with bpftool. The result is an INTERFACE
# library <name>_skel whose include directory holds the skeleton, so C++
# targets use it with target_link_libraries(... <name>_skel).
#
# vmlinux.h is not generated from the build host's kernel: bpf/lib/vmlinux_min.h
# declares the few kernel types we touch with preserve_access_index, and libbpf
# relocates every field access against the target kernel's BTF at load time
# (CO-RE). The build therefore works on hosts without /sys/kernel/btf/vmlinux.

find_program(BPF_CLANG NAMES clang-19 clang-16 clang-14 clang REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  set(BPF_TARGET_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  set(BPF_TARGET_ARCH arm64)
else()
  message(FATAL_ERROR "bpf_object: unsupported architecture ${CMAKE_SYSTEM_PROCESSOR}")
endif()
execute_process(COMMAND ${CMAKE_C_COMPILER} -print-multiarch
                OUTPUT_VARIABLE BPF_MULTIARCH OUTPUT_STRIP_TRAILING_WHITESPACE
                ERROR_QUIET)
if(NOT BPF_MULTIARCH)
  set(BPF_MULTIARCH ${CMAKE_SYSTEM_PROCESSOR}-linux-gnu)
endif()
# A cross build (cmake/aarch64-linux-gnu.cmake) takes the kernel's asm headers and
# libbpf's BPF headers from its sysroot, not from the build machine.
set(BPF_SYSROOT_INCLUDES)
if(CMAKE_SYSROOT)
  set(BPF_SYSROOT_INCLUDES -I${CMAKE_SYSROOT}/usr/include)
endif()

function(bpf_object name src)
  set(out_dir ${CMAKE_CURRENT_BINARY_DIR}/bpf)
  set(obj ${out_dir}/${name}.bpf.o)
  set(skel ${out_dir}/${name}.skel.h)
  file(MAKE_DIRECTORY ${out_dir})
  set(werror)
  if(EXECFLOW_WERROR)
    set(werror -Werror)
  endif()
  get_filename_component(src_abs ${src} ABSOLUTE)
  get_filename_component(src_dir ${src_abs} DIRECTORY)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${BPF_CLANG} -g -O2 -target bpf -D__TARGET_ARCH_${BPF_TARGET_ARCH}
            -Wall -Wextra -Wno-unused-parameter ${werror}
            -I${src_dir} ${BPF_SYSROOT_INCLUDES} -I${CMAKE_SYSROOT}/usr/include/${BPF_MULTIARCH}
            -MD -MF ${obj}.d
            -c ${src_abs} -o ${obj}
    DEPENDS ${src_abs}
    DEPFILE ${obj}.d
    COMMENT "BPF ${name}.bpf.c"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${BPFTOOL} gen skeleton ${obj} name ${name}_bpf > ${skel}
    DEPENDS ${obj}
    COMMENT "skeleton ${name}.skel.h"
    VERBATIM)
  add_custom_target(${name}_skel_gen DEPENDS ${skel})
  add_library(${name}_skel INTERFACE)
  add_dependencies(${name}_skel ${name}_skel_gen)
  target_include_directories(${name}_skel INTERFACE ${out_dir} ${src_dir})
endfunction()
