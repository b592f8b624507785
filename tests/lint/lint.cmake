# Checks of the source tree that need no build and no privileges.
add_test(NAME lint_raw_map_calls COMMAND sh ${CMAKE_SOURCE_DIR}/tests/lint/raw_map_calls.sh ${CMAKE_SOURCE_DIR})
set_tests_properties(lint_raw_map_calls PROPERTIES LABELS "unit")
