# libFuzzer targets: the config parsers, and what a client controls before
# authentication (Authorization header, /api/v1/events query, request head checks)
# (issue 10); what the exporter reads from disk: the state file, its take journals,
# cgroup paths, the kubelet's folder names and mountinfo (issue 17). Built with clang-19
# and -fsanitize=fuzzer,address,undefined (scripts/packages/fuzz.txt); CTest runs each for
# 10 s from the seed corpus in tests/fuzz/corpus/<target>, collecting new inputs in the
# build tree (libFuzzer's own exit code, 77, is CTest's skip code here: both are set to 1).
# No clang-19: the tests skip (exit 77), which fails under CI=true.
find_program(EXECFLOW_FUZZ_CXX NAMES clang++-19)
set(EXECFLOW_FUZZ_SECONDS 10)
set(fuzz_dir ${CMAKE_BINARY_DIR}/fuzz)
# The SPDLOG_* definitions are those of Debian's spdlog::spdlog target (shared, external fmt).
set(fuzz_flags -std=c++23 -g -O1 -fsanitize=fuzzer,address,undefined
               -fno-sanitize-recover=undefined -I${CMAKE_SOURCE_DIR}
               -DSPDLOG_SHARED_LIB -DSPDLOG_COMPILED_LIB -DSPDLOG_FMT_EXTERNAL)

function(execflow_fuzzer name libs)
  set(sources ${CMAKE_SOURCE_DIR}/tests/fuzz/${name}_fuzzer.cc ${ARGN})
  if(EXECFLOW_FUZZ_CXX)
    add_custom_command(OUTPUT ${fuzz_dir}/${name}_fuzzer
                       COMMAND ${CMAKE_COMMAND} -E make_directory ${fuzz_dir}
                       COMMAND ${EXECFLOW_FUZZ_CXX} ${fuzz_flags} ${sources} ${libs}
                               -o ${fuzz_dir}/${name}_fuzzer
                       DEPENDS ${sources}
                       COMMENT "libFuzzer target ${name}_fuzzer (clang-19)")
    add_custom_target(${name}_fuzzer ALL DEPENDS ${fuzz_dir}/${name}_fuzzer)
    add_test(NAME fuzz_${name}
             COMMAND sh -c "mkdir -p ${fuzz_dir}/corpus_${name} && exec ${fuzz_dir}/${name}_fuzzer \
-max_total_time=${EXECFLOW_FUZZ_SECONDS} -timeout=10 -error_exitcode=1 -timeout_exitcode=1 -rss_limit_mb=2048 -print_final_stats=1 \
${fuzz_dir}/corpus_${name} ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/${name}")
  else()
    add_test(NAME fuzz_${name}
             COMMAND sh -c "echo 'clang++-19 not found: scripts/install-deps.sh fuzz'; \
[ \"$CI\" = true ] && exit 1; exit 77")
  endif()
  set_tests_properties(fuzz_${name} PROPERTIES LABELS "fuzz" TIMEOUT 120 SKIP_RETURN_CODE 77)
endfunction()

execflow_fuzzer(config "-lyaml-cpp" ${CMAKE_SOURCE_DIR}/exporter/config/config.cc
                ${CMAKE_SOURCE_DIR}/exporter/config/web_config.cc ${CMAKE_SOURCE_DIR}/exporter/config/yaml_section.cc
                ${CMAKE_SOURCE_DIR}/exporter/common/shown.cc)
execflow_fuzzer(http "-lcrypt;-lssl;-lcrypto;-lcivetweb"
                ${CMAKE_SOURCE_DIR}/exporter/http/auth.cc ${CMAKE_SOURCE_DIR}/exporter/http/query.cc
                ${CMAKE_SOURCE_DIR}/exporter/http/request_head.cc)
# The state file and its journals read each other's helpers: both link both.
set(fuzz_state_sources ${CMAKE_SOURCE_DIR}/exporter/state/state_file.cc ${CMAKE_SOURCE_DIR}/exporter/state/journal.cc)
execflow_fuzzer(state "-lspdlog;-lfmt" ${fuzz_state_sources})
execflow_fuzzer(journal "-lspdlog;-lfmt" ${fuzz_state_sources})
execflow_fuzzer(cgroup_path "" ${CMAKE_SOURCE_DIR}/exporter/workloads/cgroup_path.cc)
# resolver.cc reads mountinfo with libmount.
execflow_fuzzer(kubelet "-lspdlog;-lfmt;${LIBMOUNT_LDFLAGS}" ${CMAKE_SOURCE_DIR}/exporter/workloads/resolver.cc ${CMAKE_SOURCE_DIR}/exporter/common/utf8.cc
                ${CMAKE_SOURCE_DIR}/exporter/workloads/cgroup_path.cc)
execflow_fuzzer(mountinfo "-lspdlog;-lfmt;${LIBMOUNT_LDFLAGS}" ${CMAKE_SOURCE_DIR}/exporter/workloads/resolver.cc ${CMAKE_SOURCE_DIR}/exporter/common/utf8.cc
                ${CMAKE_SOURCE_DIR}/exporter/workloads/cgroup_path.cc)
