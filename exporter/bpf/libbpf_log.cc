#include "exporter/bpf/libbpf_log.h"

#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <string>

namespace execflow {
namespace {

std::atomic<int> g_quiet{0};

int PrintToSpdlog(enum libbpf_print_level level, const char* fmt, va_list args) {
  spdlog::level::level_enum lvl = level == LIBBPF_WARN && g_quiet == 0 ? spdlog::level::warn
                                  : level == LIBBPF_WARN ? spdlog::level::debug
                                  : level == LIBBPF_INFO ? spdlog::level::debug
                                                         : spdlog::level::trace;
  if (!spdlog::should_log(lvl)) return 0;
  char buf[1024];
  int n = std::vsnprintf(buf, sizeof(buf), fmt, args);
  std::string msg(buf, n < 0 ? 0 : std::min<size_t>(n, sizeof(buf) - 1));
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  spdlog::log(lvl, "{}", msg);
  return n;
}

}  // namespace

void RouteLibbpfLogToSpdlog() { libbpf_set_print(PrintToSpdlog); }

QuietLibbpf::QuietLibbpf() { ++g_quiet; }
QuietLibbpf::~QuietLibbpf() { --g_quiet; }

}  // namespace execflow
