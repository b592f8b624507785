#include "exporter/bpf/libbpf_log.h"

#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

namespace execflow {
namespace {

std::atomic<int> g_quiet{0};
thread_local std::string t_verifier_summary;
thread_local std::string t_first_warning;

constexpr std::string_view kLogBegin = "-- BEGIN PROG LOAD LOG --";
constexpr std::string_view kLogEnd = "-- END PROG LOAD LOG --";

int PrintToSpdlog(enum libbpf_print_level level, const char* fmt, va_list args) {
  va_list copy;
  va_copy(copy, args);
  const int n = std::vsnprintf(nullptr, 0, fmt, copy);
  va_end(copy);
  if (n <= 0) return n;
  std::string msg(static_cast<size_t>(n) + 1, '\0');
  std::vsnprintf(msg.data(), msg.size(), fmt, args);
  msg.resize(static_cast<size_t>(n));
  // libbpf prints a failed load's verifier log as one message.
  if (auto b = msg.find(kLogBegin); b != std::string::npos) {
    auto e = msg.find(kLogEnd, b);
    t_verifier_summary =
        SummarizeVerifierLog(msg.substr(b + kLogBegin.size(), e == std::string::npos ? e : e - b - kLogBegin.size()));
  }
  if (level == LIBBPF_WARN && t_first_warning.empty()) {
    t_first_warning = msg;
    // "libbpf: prog 'x': failed to ..." -> "failed to ..."
    if (auto p = t_first_warning.find("': "); p != std::string::npos && p < 80) {
      t_first_warning.erase(0, p + 3);
    } else if (t_first_warning.rfind("libbpf: ", 0) == 0) {
      t_first_warning.erase(0, 8);
    }
    while (!t_first_warning.empty() && (t_first_warning.back() == '\n' || t_first_warning.back() == ' ')) {
      t_first_warning.pop_back();
    }
  }
  spdlog::level::level_enum lvl = level == LIBBPF_WARN && g_quiet == 0 ? spdlog::level::warn
                                  : level == LIBBPF_WARN ? spdlog::level::debug
                                  : level == LIBBPF_INFO ? spdlog::level::debug
                                                         : spdlog::level::trace;
  if (!spdlog::should_log(lvl)) return n;
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  spdlog::log(lvl, "{}", msg);
  return n;
}

}  // namespace

void RouteLibbpfLogToSpdlog() { libbpf_set_print(PrintToSpdlog); }

QuietLibbpf::QuietLibbpf() { ++g_quiet; }
QuietLibbpf::~QuietLibbpf() { --g_quiet; }

std::string TakeLoadFailureReason() {
  std::string first = std::exchange(t_first_warning, {});
  std::string verifier = std::exchange(t_verifier_summary, {});
  return verifier.empty() ? first : verifier;
}

std::string SummarizeVerifierLog(const std::string& log, int max_lines) {
  std::vector<std::string> lines;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    // Statistics and libbpf's own hints follow the verdict.
    if (line.empty() || line.rfind("processed ", 0) == 0 || line.rfind("verification time", 0) == 0 ||
        line.rfind("stack depth", 0) == 0 || line.rfind("libbpf:", 0) == 0) {
      continue;
    }
    lines.push_back(line);
  }
  std::string out;
  const size_t first = lines.size() > static_cast<size_t>(max_lines) ? lines.size() - max_lines : 0;
  for (size_t i = first; i < lines.size(); ++i) out += (out.empty() ? "" : " | ") + lines[i];
  return out;
}

}  // namespace execflow
