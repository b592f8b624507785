// execflow_exporter: flags, logging, signals and exit codes; nothing else.
//
// Exit codes: 0 clean stop or --config.check passed, 1 start-up failure
// (kernel, privileges, port), 2 bad flags or config, 128+N when signal N
// (SIGTERM, SIGINT) arrived before start-up finished.
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>

#include <spdlog/spdlog.h>

#include "exporter/app.h"
#include "exporter/bpf/libbpf_log.h"
#include "exporter/http/server.h"
#include "exporter/log.h"

namespace {

constexpr const char* kUsage = R"(usage: execflow_exporter [flags]

  --config.file=PATH          YAML configuration (default /etc/execflow/execflow.yaml)
  --config.check              load the config, load and attach every BPF program,
                              print what was chosen and exit 0 (or non-zero)
  --web.listen-address=ADDR   [IP]:port to serve on (default :9741)
  --web.telemetry-path=PATH   path of the metrics (default /metrics)
  --web.config.file=PATH      TLS, basic auth and rate limit, in the Prometheus
                              exporter-toolkit format; re-read when it changes
  --web.max-connections=N     clients served at once (default 256; 1 to 4096)
  --web.read-timeout=DURATION time a client has to send its request headers
                              (default 5s)
  --web.idle-timeout=DURATION keep-alive: idle time allowed between requests
                              (default 2s; 0 turns keep-alive off)
  --log.level=LEVEL           debug, info, warn or error (default info)
  --log.format=FORMAT         logfmt or json (default logfmt)
  --version                   print the version and exit
  --help                      print this help and exit
)";

struct Flags {
  std::map<std::string, std::string> values = {
      {"config.file", "/etc/execflow/execflow.yaml"},
      {"web.listen-address", ":9741"},
      {"web.telemetry-path", "/metrics"},
      {"web.config.file", ""},
      {"web.max-connections", "256"},
      {"web.read-timeout", "5s"},
      {"web.idle-timeout", "2s"},
      {"log.level", "info"},
      {"log.format", "logfmt"},
  };
  bool check = false;
  bool version = false;
  bool help = false;
};

// Accepts --name=value and --name value.
bool ParseFlags(int argc, char** argv, Flags* f, std::string* err) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0) {
      *err = "unexpected argument " + execflow::Shown(a);
      return false;
    }
    a = a.substr(2);
    std::string value;
    bool has_value = false;
    if (auto eq = a.find('='); eq != std::string::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
      has_value = true;
    }
    if (a == "config.check" || a == "version" || a == "help") {
      if (has_value) {
        *err = "flag --" + a + " takes no value";
        return false;
      }
      (a == "help" ? f->help : a == "version" ? f->version : f->check) = true;
      continue;
    }
    if (!f->values.count(a)) {
      *err = "unknown flag --" + (a.size() <= 64 ? a : a.substr(0, 64) + "...");
      return false;
    }
    if (!has_value) {
      if (i + 1 >= argc) {
        *err = "flag --" + a + " needs a value";
        return false;
      }
      value = argv[++i];
    }
    f->values[a] = value;
  }
  return true;
}

execflow::Result<execflow::HttpOptions> WebFlags(Flags& flags) {
  execflow::HttpOptions http;
  http.listen_address = flags.values["web.listen-address"];
  http.telemetry_path = flags.values["web.telemetry-path"];
  if (auto ok = execflow::CivetListeningPorts(http.listen_address); !ok) {
    return std::unexpected(ok.error());
  }
  const std::string& n = flags.values["web.max-connections"];
  auto [p, ec] = std::from_chars(n.data(), n.data() + n.size(), http.max_connections);
  if (ec != std::errc() || p != n.data() + n.size() || http.max_connections < 1 ||
      http.max_connections > 4096) {
    return execflow::Fail("--web.max-connections " + execflow::Shown(n) + ": expected 1 to 4096");
  }
  for (auto [flag, out, min] : {std::tuple{"web.read-timeout", &http.read_timeout_seconds, 0.001},
                                std::tuple{"web.idle-timeout", &http.idle_timeout_seconds, 0.0}}) {
    auto d = execflow::ParseDuration(flags.values[flag]);
    if (!d || *d < min || *d > 3600) {
      return execflow::Fail(std::string("--") + flag + " " + execflow::Shown(flags.values[flag]) +
                            ": expected a duration from " + (min > 0 ? "1ms" : "0") + " to 1h");
    }
    *out = *d;
  }
  http.web_config_file = flags.values["web.config.file"];
  if (!http.web_config_file.empty()) {
    auto wc = execflow::LoadWebConfigFile(http.web_config_file);
    if (!wc) return std::unexpected(wc.error());
    http.web_config = std::move(*wc);
  }
  return http;
}

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

}  // namespace

int main(int argc, char** argv) {
  StopSignals signals;
  // One malloc arena: otherwise each civetweb worker keeps its own, sized to
  // the largest scrape it served (4 x 61 MB at 100k flows, measured).
  mallopt(M_ARENA_MAX, 1);
  Flags flags;
  std::string err;
  if (!ParseFlags(argc, argv, &flags, &err)) {
    std::fprintf(stderr, "execflow_exporter: %s\n%s", err.c_str(), kUsage);
    return 2;
  }
  if (flags.help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  const execflow::BuildInfo bi = execflow::GetBuildInfo();
  if (flags.version) {
    std::printf("execflow_exporter %s (revision %s)\n", bi.version.c_str(), bi.revision.c_str());
    return 0;
  }
  if (auto ok = execflow::SetupLogging(flags.values["log.level"], flags.values["log.format"]); !ok) {
    std::fprintf(stderr, "execflow_exporter: %s\n", ok.error().message.c_str());
    return 2;
  }
  execflow::RouteLibbpfLogToSpdlog();

  const std::string& config_file = flags.values["config.file"];
  auto config = execflow::LoadConfigFile(config_file);
  if (!config) {
    spdlog::error("{}", config.error().message);
    return 2;
  }
  auto http = WebFlags(flags);
  if (!http) {
    spdlog::error("{}", http.error().message);
    return 2;
  }

  if (flags.check) {
    auto collectors = execflow::StartCollectors(*config);
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

  spdlog::info("starting execflow_exporter version={} revision={} config={}", bi.version,
               bi.revision, config_file);
  auto app = execflow::App::Start(*config, *http);
  if (!app) {
    spdlog::error("start-up failed: {}", app.error().message);
    return 1;
  }
  signals.Serving();
  // Hook probing loads kernel BTF several times; give that heap back.
  malloc_trim(0);
  spdlog::info("listening on {} port={} telemetry_path={} tls={} basic_auth={} max_connections={}",
               http->listen_address, (*app)->port(), http->telemetry_path,
               http->web_config.tls.enabled(), !http->web_config.basic_auth_users.empty(),
               http->max_connections);

  const int sig = signals.Wait();
  spdlog::info("received {}, stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  app->reset();
  spdlog::info("stopped");
  return 0;
}
