# The kernel matrix (tests/vm): execflow on Debian's stock x86-64 kernels 5.10, 6.1, 6.12
# and sid's newest, and arm64 kernels 5.10, 6.12 and sid's newest, under qemu, and
# on the running kernel. Included by the top-level CMakeLists.txt. The arm64 guests run
# the arm64 cross build, build-arm64 beside this tree's source (scripts/build-arm64.sh;
# scripts/test.sh makes it). Exit 77 = skipped (not root, no qemu); a failure under CI=true.
find_package(Python3 REQUIRED COMPONENTS Interpreter)

add_executable(execflow_vm_workload ${CMAKE_SOURCE_DIR}/tests/vm/workload.cc)
target_include_directories(execflow_vm_workload PRIVATE ${CMAKE_SOURCE_DIR})
target_compile_options(execflow_vm_workload PRIVATE ${EXECFLOW_WARNINGS})
target_link_libraries(execflow_vm_workload PRIVATE Threads::Threads)

# RUN_SERIAL: guests under TCG take both CPUs for minutes.
add_test(NAME kernel_matrix
         COMMAND ${EXECFLOW_ISOLATED} ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/tests/vm/matrix.py
                 --build ${CMAKE_BINARY_DIR} --build-arm64 ${CMAKE_SOURCE_DIR}/build-arm64
                 --work ${CMAKE_BINARY_DIR}/kernel-matrix)
set_tests_properties(kernel_matrix PROPERTIES LABELS "vm;privileged" TIMEOUT 4800
                     SKIP_RETURN_CODE 77 RUN_SERIAL TRUE)

# A hung boot ends at the boot limit and is tried once more (tests/vm/boot_retry_test.py);
# without that limit it would run into this test's time-out.
add_test(NAME vm_boot_retry
         COMMAND ${EXECFLOW_ISOLATED} ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/tests/vm/boot_retry_test.py)
set_tests_properties(vm_boot_retry PROPERTIES LABELS "vm;privileged" TIMEOUT 600 SKIP_RETURN_CODE 77)
