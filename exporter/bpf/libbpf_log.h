#pragma once

namespace execflow {

// Routes libbpf's own messages into spdlog: warnings as warn, info as debug
// (libbpf is chatty at info), debug as trace.
void RouteLibbpfLogToSpdlog();

// While alive, libbpf's warnings are logged at debug: trying hooks that this
// kernel lacks is expected, and the reasons are summarized once by the caller.
class QuietLibbpf {
 public:
  QuietLibbpf();
  ~QuietLibbpf();
  QuietLibbpf(const QuietLibbpf&) = delete;
  QuietLibbpf& operator=(const QuietLibbpf&) = delete;
};

}  // namespace execflow
