#include "exporter/flags.h"

#include <charconv>
#include <set>
#include <tuple>

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
  std::set<std::string> given;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0) return Fail("unexpected argument " + Shown(a));
    a = a.substr(2);
    std::string value;
    bool has_value = false;
    if (auto eq = a.find('='); eq != std::string::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
      has_value = true;
    }
    const bool repeatable = a == "web.listen-address";
    const bool known = repeatable || f.values.count(a) || a == "config.check" ||
                       a == "web.systemd-socket" || a == "bpf.unpin" || a == "version" || a == "help";
    if (!known) return Fail("unknown flag --" + (a.size() <= 64 ? a : a.substr(0, 64) + "..."));
    if (!repeatable && !given.insert(a).second) {
      return Fail("flag --" + a + " given twice (only --web.listen-address can be repeated)");
    }
    if (a == "config.check" || a == "web.systemd-socket" || a == "bpf.unpin" || a == "version" ||
        a == "help") {
      if (has_value) return Fail("flag --" + a + " takes no value");
      (a == "help"                 ? f.help
       : a == "version"            ? f.version
       : a == "web.systemd-socket" ? f.systemd_socket
       : a == "bpf.unpin"          ? f.unpin
                                   : f.check) = true;
      continue;
    }
    if (!has_value) {
      if (i + 1 >= argc) return Fail("flag --" + a + " needs a value");
      value = argv[++i];
    }
    if (repeatable) {
      f.listen_addresses.push_back(value);
    } else {
      f.values[a] = value;
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
