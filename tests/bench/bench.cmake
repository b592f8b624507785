# Benchmarks (issue 6; scrape cost of issues 3 and 12). Included by the top-level CMakeLists.txt.
# The full benchmark is tests/bench/run.sh and is not run by CTest; bench_smoke runs
# every part of it with tiny sizes (one round, 1k flows) so CI proves it still works.
# Exit 77 = skipped (not root, no BTF, no bpftrace); a failure instead under CI=true.
find_package(Python3 REQUIRED COMPONENTS Interpreter)

# Programs that do nothing on execflow's hooks: the floor of each hook (issue 12).
bpf_object(empty ${CMAKE_SOURCE_DIR}/tests/bench/empty.bpf.c)
add_executable(execflow_bench_load ${CMAKE_SOURCE_DIR}/tests/bench/load.cc)
target_compile_options(execflow_bench_load PRIVATE ${EXECFLOW_WARNINGS})
target_link_libraries(execflow_bench_load PRIVATE Threads::Threads PkgConfig::LIBBPF empty_skel tcp_skel)
target_include_directories(execflow_bench_load PRIVATE ${CMAKE_SOURCE_DIR})

# The serializer floor (issue 12): prometheus-cpp serving an execflow body's families,
# built ahead of time. nlohmann-json reads the families bench.py writes.
find_package(nlohmann_json 3 REQUIRED)
find_package(ZLIB REQUIRED)
add_executable(execflow_bench_floor ${CMAKE_SOURCE_DIR}/tests/bench/floor.cc)
target_compile_options(execflow_bench_floor PRIVATE ${EXECFLOW_WARNINGS})
target_link_libraries(execflow_bench_floor PRIVATE prometheus-cpp::pull prometheus-cpp::core
                      nlohmann_json::nlohmann_json ZLIB::ZLIB)

add_test(NAME bench_smoke
         COMMAND ${EXECFLOW_ISOLATED} ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/tests/bench/bench.py --smoke
                 --exporter $<TARGET_FILE:execflow_exporter>
                 --load $<TARGET_FILE:execflow_bench_load>
                 --floor $<TARGET_FILE:execflow_bench_floor>)
# RUN_SERIAL: it saturates both CPUs and would slow timing-sensitive tests next to it.
set_tests_properties(bench_smoke PROPERTIES LABELS "bench" TIMEOUT 120 SKIP_RETURN_CODE 77
                     RUN_SERIAL TRUE)

# HTTP under hostile load (issue 10): slow clients, wrk on /metrics, a wrong-password
# flood; 5 s each. tests/bench/http_bench.py --exporter BIN runs them for 60 s each.
add_test(NAME bench_http_smoke
         COMMAND ${EXECFLOW_ISOLATED} ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/tests/bench/http_bench.py --smoke
                 --exporter $<TARGET_FILE:execflow_exporter>)
set_tests_properties(bench_http_smoke PROPERTIES LABELS "bench" TIMEOUT 180 SKIP_RETURN_CODE 77
                     RUN_SERIAL TRUE)

# Where one program's time goes (issue 22): tests/bench/ablate.py builds copies of a program
# with one part cut out. One short round of each proves every cut still matches the code and
# every copy still loads.
add_test(NAME bench_ablate_smoke
         COMMAND ${EXECFLOW_ISOLATED} ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/tests/bench/ablate.py
                 --load $<TARGET_FILE:execflow_bench_load> --seconds 0.5 --rounds 1)
set_tests_properties(bench_ablate_smoke PROPERTIES LABELS "bench" TIMEOUT 300 SKIP_RETURN_CODE 77
                     RUN_SERIAL TRUE)
