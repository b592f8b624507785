# -DEXECFLOW_SANITIZE=address,undefined or =thread: a build tree whose code (ours, and
# the exporter and tests built from it) is instrumented by g++'s sanitizers. Debian's
# libraries (libbpf, civetweb, prometheus-cpp, yaml-cpp) are not; ASan still checks
# every heap block they get from malloc, TSan sees their pthread calls but not their
# plain memory accesses (races inside them that are not ours: tests/sanitizers/tsan.supp). scripts/test.sh runs two such trees after the
# normal one: build-asan and build-tsan.
#
# Every report ends the process (-fno-sanitize-recover=all: UBSan's too), and each test
# of such a tree runs through tests/sanitizers/run.sh, which gives every instrumented
# process it starts (an e2e script's exporter too) a report file and fails the test if
# any process wrote one.
set(EXECFLOW_SANITIZE "" CACHE STRING
    "Sanitizers to build with: address,undefined (ASan+UBSan) or thread (TSan); empty: none")
set(EXECFLOW_TEST_LAUNCHER "")
if(EXECFLOW_SANITIZE)
  if(NOT EXECFLOW_SANITIZE MATCHES "^(address|undefined|address,undefined|undefined,address|thread)$")
    message(FATAL_ERROR "EXECFLOW_SANITIZE=${EXECFLOW_SANITIZE}: expected address,undefined or thread")
  endif()
  # -g1 and -O1 (after the build type's -g and -O2, so they win): line tables only, enough
  # for the reports' file:line, and the optimization the sanitizers' own documentation
  # suggests. Full debug info made compiling these trees a third slower, -O2 another 60%
  # (app.cc under ASan+UBSan: 72 s at -O2, 45 s at -O1): CI time.
  add_compile_options(-fsanitize=${EXECFLOW_SANITIZE} -fno-sanitize-recover=all -fno-omit-frame-pointer -g1 -O1)
  add_link_options(-fsanitize=${EXECFLOW_SANITIZE})
  set(EXECFLOW_TEST_LAUNCHER ${CMAKE_SOURCE_DIR}/tests/sanitizers/run.sh)
endif()
