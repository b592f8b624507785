# Hostile input and a hostile network against the binary (issue 10). Exit 77 = skipped
# (a failure under CI=true).
find_package(Python3 REQUIRED COMPONENTS Interpreter)
add_test(NAME hardening_e2e
         COMMAND ${EXECFLOW_TEST_LAUNCHER} ${EXECFLOW_ISOLATED} ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/tests/e2e/hardening_e2e.py
                 $<TARGET_FILE:execflow_exporter>)
set_tests_properties(hardening_e2e PROPERTIES LABELS "e2e;privileged" TIMEOUT 300 SKIP_RETURN_CODE 77)
