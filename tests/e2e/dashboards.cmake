# Dashboards, Prometheus config and alert rules (issue 4). Included by the top-level
# CMakeLists.txt. Each script exits 0 on success, 1 on failure and 77 when something it
# needs is missing (a failure instead under CI=true).
find_package(Python3 REQUIRED COMPONENTS Interpreter)

set(EXECFLOW_DASHBOARD_TESTS_DIR ${CMAKE_SOURCE_DIR}/tests/e2e)

# No exporter needed: JSON structure, variables, datasources, metric and label names.
add_test(NAME dashboards_static
         COMMAND ${Python3_EXECUTABLE} ${EXECFLOW_DASHBOARD_TESTS_DIR}/dashboards_static.py)
set_tests_properties(dashboards_static PROPERTIES LABELS "e2e" TIMEOUT 60 SKIP_RETURN_CODE 77)

# mixin/ generates the committed dashboards and rules, and its selector is configuration.
add_test(NAME dashboards_mixin
         COMMAND ${Python3_EXECUTABLE} ${EXECFLOW_DASHBOARD_TESTS_DIR}/dashboards_mixin.py)
set_tests_properties(dashboards_mixin PROPERTIES LABELS "e2e" TIMEOUT 120 SKIP_RETURN_CODE 77)

# promtool check config / check rules / test rules, and every dashboard query parses.
add_test(NAME dashboards_promtool
         COMMAND ${Python3_EXECUTABLE} ${EXECFLOW_DASHBOARD_TESTS_DIR}/dashboards_promtool.py)
set_tests_properties(dashboards_promtool PROPERTIES LABELS "e2e" TIMEOUT 120 SKIP_RETURN_CODE 77)

# A live scrape: promtool check metrics, and every metric the dashboards name is exported.
add_test(NAME dashboards_live_scrape
         COMMAND ${EXECFLOW_ISOLATED} ${Python3_EXECUTABLE} ${EXECFLOW_DASHBOARD_TESTS_DIR}/dashboards_live.py
                 $<TARGET_FILE:execflow_exporter>)
set_tests_properties(dashboards_live_scrape PROPERTIES LABELS "e2e" TIMEOUT 120 SKIP_RETURN_CODE 77)

# Exporter + Prometheus server: every panel query returns data.
add_test(NAME dashboards_prometheus_e2e
         COMMAND ${EXECFLOW_ISOLATED} ${Python3_EXECUTABLE} ${EXECFLOW_DASHBOARD_TESTS_DIR}/dashboards_e2e.py
                 $<TARGET_FILE:execflow_exporter>)
set_tests_properties(dashboards_prometheus_e2e PROPERTIES LABELS "e2e" TIMEOUT 300 SKIP_RETURN_CODE 77)
