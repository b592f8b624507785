#pragma once

#include <string>

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

// Why the latest load on this thread failed, as libbpf saw it, and forgets
// it: the verifier's last lines ("R2 unbounded memory access, ...") when the
// kernel gave a log, else libbpf's first warning ("failed to find kernel BTF
// type ID of 'sock_send_length'"); empty when libbpf said nothing.
std::string TakeLoadFailureReason();

// The verifier's own verdict lines of a load log: its last lines, without the
// statistics it prints after the verdict, joined with " | ".
std::string SummarizeVerifierLog(const std::string& log, int max_lines = 2);

}  // namespace execflow
