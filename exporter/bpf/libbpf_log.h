#pragma once

#include <string>

namespace execflow {

// Routes libbpf's own messages into spdlog: warnings as warn, info as debug
// (libbpf is chatty at info), debug as trace.
void RouteLibbpfLogToSpdlog();

// While alive, libbpf's warnings go to debug: trying hooks this kernel lacks is expected,
// and the caller sums up the reasons once.
class QuietLibbpf {
 public:
  QuietLibbpf();
  ~QuietLibbpf();
  QuietLibbpf(const QuietLibbpf&) = delete;
  QuietLibbpf& operator=(const QuietLibbpf&) = delete;
};

// Why this thread's latest load failed, then forgets it: the verifier's last lines
// ("R2 unbounded memory access, ...") if the kernel gave a log, else libbpf's first
// warning ("failed to find kernel BTF type ID of 'sock_send_length'"), else "".
std::string TakeLoadFailureReason();

// A load log's verdict: its last lines before the statistics, joined with " | ".
std::string SummarizeVerifierLog(const std::string& log, int max_lines = 2);

}  // namespace execflow
