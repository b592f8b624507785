// execflow_exporter: flags, logging, signals and exit codes; nothing else.
//
// Exit codes: 0 clean stop or --config.check passed, 1 start-up failure
// (kernel, privileges, port), 2 bad flags or config.
#include <malloc.h>
#include <signal.h>

#include <cstdio>
#include <map>
#include <string>

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
  --web.listen-address=ADDR   [host]:port to serve on (default :9741)
  --web.telemetry-path=PATH   path of the metrics (default /metrics)
  --web.config.file=PATH      TLS and basic auth, in the Prometheus exporter-toolkit
                              format (tls_server_config, basic_auth_users)
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
      *err = "unexpected argument '" + a + "'";
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
      *err = "unknown flag --" + a;
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

}  // namespace

int main(int argc, char** argv) {
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

  // Block the stop signals before any thread starts so only sigwait sees them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  const std::string& config_file = flags.values["config.file"];
  auto config = execflow::LoadConfigFile(config_file);
  if (!config) {
    spdlog::error("{}", config.error().message);
    return 2;
  }

  execflow::HttpOptions http;
  http.listen_address = flags.values["web.listen-address"];
  http.telemetry_path = flags.values["web.telemetry-path"];
  if (const std::string& web = flags.values["web.config.file"]; !web.empty()) {
    auto wc = execflow::LoadWebConfigFile(web);
    if (!wc) {
      spdlog::error("{}", wc.error().message);
      return 2;
    }
    if (!wc->tls.cert_file.empty()) {
      if (auto ok = execflow::CheckTlsSupport(); !ok) {
        spdlog::error("{}: {}", web, ok.error().message);
        return 1;
      }
    }
    http.tls_cert_file = wc->tls.cert_file;
    http.tls_key_file = wc->tls.key_file;
    http.basic_auth_users = wc->basic_auth_users;
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
  auto app = execflow::App::Start(*config, http);
  if (!app) {
    spdlog::error("start-up failed: {}", app.error().message);
    return 1;
  }
  // Hook probing loads kernel BTF several times; give that heap back.
  malloc_trim(0);
  spdlog::info("listening on {} port={} telemetry_path={} tls={} basic_auth={}", http.listen_address,
               (*app)->port(), http.telemetry_path, !http.tls_cert_file.empty(),
               !http.basic_auth_users.empty());

  int sig = 0;
  sigwait(&stop, &sig);
  spdlog::info("received {}, stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  app->reset();
  spdlog::info("stopped");
  return 0;
}
