#include "exporter/flags.h"

#include <algorithm>
#include <charconv>
#include <tuple>
#include <vector>

#include <CLI/CLI.hpp>

#include "exporter/config/config.h"
#include "exporter/config/yaml_section.h"

namespace execflow {

const char kUsage[] = R"(usage: execflow_exporter [flags]

  --config.file=PATH          YAML configuration (default /etc/execflow/execflow.yaml)
  --config.check              load the config, load and attach every BPF program,
                              print what was chosen and exit 0 (or non-zero)
  --web.listen-address=ADDR   [IP]:port to serve on (default :9741); repeat it to
                              serve on several
  --web.systemd-socket        serve on the sockets systemd passes (socket
                              activation) instead of --web.listen-address
  --web.telemetry-path=PATH   path of the metrics (default /metrics)
  --web.config.file=PATH      TLS, basic auth and rate limit, in the Prometheus
                              exporter-toolkit format; re-read when it changes
  --web.max-connections=N     clients served at once (default 256; 1 to 4096)
  --web.read-timeout=DURATION time a client has to send its request headers
                              (default 5s)
  --web.idle-timeout=DURATION keep-alive: idle time allowed between requests
                              (default 2s; 0 turns keep-alive off)
  --bpf.unpin                 remove the BPF state pinned under the config's
                              bpf.pin_path (the programs stop counting), say
                              what was removed and exit 0; for uninstalling
  --log.level=LEVEL           debug, info, warn or error (default info)
  --log.format=FORMAT         logfmt or json (default logfmt)
  --version                   print the version and exit
  --help                      print this help and exit
)";

Result<Flags> ParseFlags(int argc, const char* const* argv) {
  Flags f;
  CLI::App app;
  app.set_help_flag();  // --help is one of ours: main() prints kUsage
  app.allow_extras();   // what CLI11 does not know is reported below, in our words
  std::vector<const CLI::Option*> once;
  for (auto& [name, value] : f.values) {
    once.push_back(app.add_option("--" + name, value)->multi_option_policy(CLI::MultiOptionPolicy::TakeLast));
  }
  app.add_option("--web.listen-address", f.listen_addresses)->allow_extra_args(false);
  const std::pair<const char*, bool*> switches[] = {
      {"config.check", &f.check}, {"web.systemd-socket", &f.systemd_socket}, {"bpf.unpin", &f.unpin},
      {"version", &f.version},    {"help", &f.help}};
  for (auto [name, out] : switches) once.push_back(app.add_flag(std::string("--") + name, *out));
  // CLI11 reads "--name=" as "--name" followed by a value in the next argument,
  // and "--switch=x" as a value for the switch: the first is an empty value here,
  // the second an error.
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    const size_t eq = a.find('=');
    const CLI::Option* o =
        a.starts_with("--") && eq != std::string::npos ? app.get_option_no_throw(a.substr(0, eq)) : nullptr;
    if (o && o->get_expected_max() == 0) return Fail("flag " + a.substr(0, eq) + " takes no value");
    args.push_back(o && eq + 1 == a.size() ? a.substr(0, eq) : a);
    if (o && eq + 1 == a.size()) args.emplace_back();
  }
  std::reverse(args.begin(), args.end());  // App::parse takes them last first
  try {
    app.parse(args);
  } catch (const CLI::ArgumentMismatch&) {  // a value missing, which only the last flag can lack
    return Fail("flag " + std::string(argv[argc - 1]) + " needs a value");
  }
  if (const std::vector<std::string> extra = app.remaining(); !extra.empty()) {
    const std::string& a = extra.front();
    if (!a.starts_with("--")) return Fail("unexpected argument " + Shown(a));
    const std::string name = a.substr(0, a.find('='));
    return Fail("unknown flag " + (name.size() <= 66 ? name : name.substr(0, 66) + "..."));
  }
  for (const CLI::Option* o : once) {
    if (o->count() > 1) {
      return Fail("flag " + o->get_name() + " given twice (only --web.listen-address can be repeated)");
    }
  }
  return f;
}

Result<HttpOptions> WebOptions(const Flags& flags) {
  HttpOptions http;
  auto value = [&](const char* name) -> const std::string& { return flags.values.at(name); };
  if (flags.systemd_socket && !flags.listen_addresses.empty()) {
    // exporter-toolkit serves the systemd sockets "instead of" the addresses;
    // an address given explicitly would be ignored without a word.
    return Fail("--web.listen-address and --web.systemd-socket are mutually exclusive: with "
                "--web.systemd-socket the socket unit's ListenStream= says where to listen");
  }
  if (flags.systemd_socket) {
    http.listen_addresses.clear();
  } else if (!flags.listen_addresses.empty()) {
    http.listen_addresses = flags.listen_addresses;
  }
  for (const std::string& addr : http.listen_addresses) {
    if (auto ok = CivetListeningPorts(addr); !ok) return std::unexpected(ok.error());
  }
  http.telemetry_path = value("web.telemetry-path");
  const std::string& n = value("web.max-connections");
  auto [p, ec] = std::from_chars(n.data(), n.data() + n.size(), http.max_connections);
  if (ec != std::errc() || p != n.data() + n.size() || http.max_connections < 1 ||
      http.max_connections > 4096) {
    return Fail("--web.max-connections " + Shown(n) + ": expected 1 to 4096");
  }
  for (auto [flag, out, min] : {std::tuple{"web.read-timeout", &http.read_timeout_seconds, 0.001},
                                std::tuple{"web.idle-timeout", &http.idle_timeout_seconds, 0.0}}) {
    auto d = ParseDuration(value(flag));
    if (!d || *d < min || *d > 3600) {
      return Fail(std::string("--") + flag + " " + Shown(value(flag)) +
                  ": expected a duration from " + (min > 0 ? "1ms" : "0") + " to 1h");
    }
    *out = *d;
  }
  http.web_config_file = value("web.config.file");
  if (!http.web_config_file.empty()) {
    auto wc = LoadWebConfigFile(http.web_config_file);
    if (!wc) return std::unexpected(wc.error());
    http.web_config = std::move(*wc);
  }
  return http;
}

}  // namespace execflow
