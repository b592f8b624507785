#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "tests/wait_for.h"

namespace execflow {

// Empty when this process can load BPF on this kernel, else why not.
std::string WhyNotPrivileged();

// Skips the test without privileges; under CI=true that is a failure, since
// CI runs as root on a kernel that supports every privileged test.
#define EXECFLOW_REQUIRE_PRIVILEGED()                                          \
  do {                                                                         \
    const std::string why_not = ::execflow::WhyNotPrivileged();                \
    if (!why_not.empty()) {                                                    \
      const char* ci = std::getenv("CI");                                      \
      if (ci && std::string(ci) == "true") FAIL() << "CI=true: " << why_not;   \
      GTEST_SKIP() << why_not;                                                 \
    }                                                                          \
  } while (0)

// Forks a child that drops to `uid`/`gid` and runs `body`; returns the
// child's exit status (0 when body returned true).
int RunAs(uint32_t uid, uint32_t gid, const std::function<bool()>& body);

// A UID no account or process uses, different for each call.
uint32_t UnusedUid();

// This process's network namespace (its inode number) and cgroup v2 id (the
// inode number of its cgroupfs folder), as the BPF programs key flows by.
uint32_t CurrentNetns();
uint64_t CurrentCgroupId();

}  // namespace execflow
