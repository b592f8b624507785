#pragma once

#include <map>
#include <string>
#include <vector>

#include "exporter/common/result.h"
#include "exporter/http/server.h"

namespace execflow {

extern const char kUsage[];

// The command line as given, defaults filled in. Parsed apart from main() so
// that its rules are unit-tested.
struct Flags {
  // Flags that take one value, by name without the dashes.
  std::map<std::string, std::string> values = {
      {"config.file", "/etc/execflow/execflow.yaml"},
      {"web.telemetry-path", "/metrics"},
      {"web.config.file", ""},
      {"web.max-connections", "256"},
      {"web.read-timeout", "5s"},
      {"web.idle-timeout", "2s"},
      {"log.level", "info"},
      {"log.format", "logfmt"},
  };
  // Every --web.listen-address, in the order given; empty when none was.
  std::vector<std::string> listen_addresses;
  bool systemd_socket = false;
  bool check = false;
  bool unpin = false;
  bool version = false;
  bool help = false;
};

// Parsed with CLI11. Accepts --name=value and --name value, and --name= for
// an empty value. As in exporter-toolkit (kingpin):
// --web.listen-address may be given several times and its default (:9741)
// only applies when it is not given; any other flag given twice is an error.
Result<Flags> ParseFlags(int argc, const char* const* argv);

// The --web.* flags checked (every listen address, one error line each) and
// --web.config.file loaded. The systemd sockets themselves are taken later
// (SystemdSockets()), when the process is about to serve.
Result<HttpOptions> WebOptions(const Flags& flags);

}  // namespace execflow
