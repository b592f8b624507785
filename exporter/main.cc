// execflow_exporter: flags (their rules in exporter/flags.h), logging, signals
// and exit codes; nothing else.
//
// Exit codes: 0 clean stop or --config.check passed, 1 start-up failure
// (kernel, privileges, port), 2 bad flags or config, 128+N when signal N
// (SIGTERM, SIGINT) arrived before start-up finished.
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>

#include <spdlog/spdlog.h>

#include "exporter/app.h"
#include "exporter/bpf/libbpf_log.h"
#include "exporter/flags.h"
#include "exporter/http/server.h"
#include "exporter/http/systemd_socket.h"
#include "exporter/log.h"

namespace {

// SIGTERM and SIGINT are blocked in every thread and taken by one thread
// that sigwait()s for them from the first instruction of main: during
// start-up (reading files, loading BPF, which can take seconds) a stop signal
// ends the process at once; once serving, it asks main to stop cleanly.
class StopSignals {
 public:
  StopSignals() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGTERM);
    sigaddset(&set_, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
    std::thread([this] { Loop(); }).detach();
  }
  void Serving() { serving_ = true; }
  int Wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return sig_ != 0; });
    return sig_;
  }

 private:
  void Loop() {
    for (;;) {
      int sig = 0;
      if (sigwait(&set_, &sig) != 0) continue;
      if (!serving_ || stopping_) {
        // Nothing to shut down in order yet (or a second signal): the kernel
        // detaches whatever was attached when the process ends.
        char msg[96];
        const int n = std::snprintf(msg, sizeof(msg), "execflow_exporter: %s during %s; exiting\n",
                                    sig == SIGTERM ? "SIGTERM" : "SIGINT",
                                    stopping_ ? "shutdown" : "start-up");
        if (n > 0 && write(STDERR_FILENO, msg, static_cast<size_t>(n)) < 0) {
          // Nothing else to tell.
        }
        _exit(128 + sig);
      }
      stopping_ = true;
      std::lock_guard lock(mu_);
      sig_ = sig;
      cv_.notify_all();
    }
  }

  sigset_t set_;
  std::atomic<bool> serving_{false};
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  int sig_ = 0;
};

// --bpf.unpin: removes the BPF state pinned under the config's bpf.pin_path
// and says what went.
int Unpin(const execflow::Flags& flags, const execflow::Config& config) {
  if (flags.check) {
    std::fprintf(stderr, "execflow_exporter: --bpf.unpin and --config.check are mutually exclusive\n");
    return 2;
  }
  auto removed = execflow::UnpinState(config);
  if (!removed) {
    spdlog::error("{}", removed.error().message);
    return config.bpf.pin_path.empty() ? 2 : 1;
  }
  if (removed->empty()) {
    std::printf("nothing pinned in %s\n", config.bpf.pin_path.c_str());
  } else {
    std::printf("removed %zu pins from %s:", removed->size(), config.bpf.pin_path.c_str());
    for (const auto& p : *removed) std::printf(" %s", p.c_str());
    std::printf("\n");
  }
  return 0;
}

// --config.check: loads and attaches every BPF program and prints what was
// chosen; the programs are detached again when the process exits.
int CheckConfig(const execflow::Config& config, const std::string& config_file) {
  auto collectors = execflow::StartCollectors(config);
  if (!collectors) {
    spdlog::error("config check failed: {}", collectors.error().message);
    return 1;
  }
  for (const auto& c : collectors->all) {
    for (const auto& p : c->Programs()) {
      std::printf("%s: program %s attached to %s/%s\n", c->Name().c_str(), p.program.c_str(),
                  p.attach_type.c_str(), p.hook.c_str());
    }
  }
  std::printf("config %s is valid\n", config_file.c_str());
  return 0;
}

// Starts everything, serves until SIGTERM or SIGINT, then stops in order.
int Serve(StopSignals& signals, const execflow::Flags& flags, const execflow::Config& config,
          execflow::HttpOptions http) {
  const execflow::BuildInfo bi = execflow::GetBuildInfo();
  spdlog::info("starting execflow_exporter version={} revision={} config={}", bi.version,
               bi.revision, flags.values.at("config.file"));
  if (flags.systemd_socket) {
    // Taken before anything is attached: a socket unit that passes the wrong
    // kind of socket fails here, at once.
    auto sockets = execflow::SystemdSockets();
    if (!sockets) {
      spdlog::error("{}", sockets.error().message);
      return 1;
    }
    http.systemd_sockets = std::move(*sockets);
  }
  auto app = execflow::App::Start(config, http);
  if (!app) {
    spdlog::error("start-up failed: {}", app.error().message);
    return 1;
  }
  signals.Serving();
  // Hook probing loads kernel BTF several times; give that heap back.
  malloc_trim(0);
  std::string addresses;
  for (const std::string& a : (*app)->addresses()) addresses += (addresses.empty() ? "" : ",") + a;
  spdlog::info("listening on {} systemd_socket={} telemetry_path={} tls={} basic_auth={} "
               "max_connections={}",
               addresses, flags.systemd_socket, http.telemetry_path, http.web_config.tls.enabled(),
               !http.web_config.basic_auth_users.empty(), http.max_connections);

  const int sig = signals.Wait();
  spdlog::info("received {}, stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  app->reset();
  spdlog::info("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Never destroyed (the Google style guide's idiom for such objects): its thread
  // runs until the process ends, so it outlives main(), which may return while the
  // thread is still starting; a local would leave it reading main()'s returned frame
  // (ASan: stack-use-after-return in sigwait, tests/sanitizers/exporter_exits.sh).
  static StopSignals& signals = *new StopSignals;
  // One malloc arena: otherwise each civetweb worker keeps its own, sized to
  // the largest scrape it served (4 x 61 MB at 100k flows, measured).
  mallopt(M_ARENA_MAX, 1);
  auto flags = execflow::ParseFlags(argc, argv);
  if (!flags) {
    std::fprintf(stderr, "execflow_exporter: %s\n%s", flags.error().message.c_str(),
                 execflow::kUsage);
    return 2;
  }
  if (flags->help) {
    std::fputs(execflow::kUsage, stdout);
    return 0;
  }
  if (flags->version) {
    const execflow::BuildInfo bi = execflow::GetBuildInfo();
    std::printf("execflow_exporter %s (revision %s)\n", bi.version.c_str(), bi.revision.c_str());
    return 0;
  }
  if (auto ok = execflow::SetupLogging(flags->values.at("log.level"),
                                       flags->values.at("log.format"));
      !ok) {
    std::fprintf(stderr, "execflow_exporter: %s\n", ok.error().message.c_str());
    return 2;
  }
  execflow::RouteLibbpfLogToSpdlog();

  const std::string& config_file = flags->values.at("config.file");
  auto config = execflow::LoadConfigFile(config_file);
  if (!config) {
    spdlog::error("{}", config.error().message);
    return 2;
  }
  if (flags->unpin) return Unpin(*flags, *config);
  auto http = execflow::WebOptions(*flags);
  if (!http) {
    spdlog::error("{}", http.error().message);
    return 2;
  }
  if (flags->check) return CheckConfig(*config, config_file);
  return Serve(signals, *flags, *config, std::move(*http));
}
