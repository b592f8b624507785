#pragma once

#include <cstdint>
#include <map>
#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "exporter/common/result.h"
#include "exporter/common/shown.h"

namespace execflow {

struct ExecConfig {
  bool enabled = true;
  std::string hook = "auto";           // auto or a mode of ExecHooks() (exporter/bpf/hooks.h)
  std::string failures_hook = "auto";  // auto, a mode, or off
  std::vector<std::string> labels = {"uid", "namespace", "pod", "container"};
  uint32_t max_uids = 10240;
  uint32_t max_failure_keys = 10240;
};

struct EventsConfig {
  bool enabled = true;
  std::string transport = "auto";        // auto | ringbuf | perfbuf (also carries TCP close notices)
  uint32_t ring_buffer_bytes = 1 << 20;  // power of two, >= page size
  uint32_t keep_last = 1024;             // served at /api/v1/events
  std::string output = "none";           // none | stdout | file
  std::string file_path = "/var/log/execflow/events.jsonl";
  uint64_t file_max_bytes = 100ull << 20;
  uint32_t file_max_files = 5;
};

struct TcpConfig {
  bool enabled = true;
  std::string hook = "auto";        // auto or a mode of TcpHooks() (exporter/bpf/hooks.h)
  std::string receive_hook = "auto";  // auto or a mode of TcpHooks()
  std::string close_hook = "auto";
  std::vector<std::string> labels = {"saddr", "sport", "daddr", "dport", "namespace", "pod", "container"};
  uint32_t max_series = 10000;
  uint32_t max_flows = 65536;
  // A series whose flows all closed is exported this long with its final total.
  std::chrono::nanoseconds closed_flow_retention = std::chrono::minutes(5);
};

// Where namespace, pod and container labels come from (exporter/workloads).
struct WorkloadsConfig {
  std::string cgroup_root;                    // "" finds the cgroup v2 mount
  std::string kubelet_log_dir = "/var/log";  // holds pods/ and containers/
};

struct BpfConfig {
  bool run_time_stats = false;
  // Where maps and links are pinned so counting goes on across restarts
  // (exporter/bpf/pinning.h); "" (off in the file) pins nothing.
  std::string pin_path = "/sys/fs/bpf/execflow";
  // Where the totals user space took out of the maps (closed flows, gone
  // workloads) are saved for a process that adopts the pinned maps
  // (exporter/state); "" (off in the file) saves nothing.
  std::string state_file = "/run/execflow/state.json";
};

// bpf.pin_path's value: "off" -> "", else an absolute, normalized path
// ("/sys/fs/bpf/execflow"); an error says what was expected.
Result<std::string> ParsePinPath(std::string_view value);
// bpf.state_file's value: "off" -> "", else an absolute, normalized path of a
// file ("/run/execflow/state.json"); an error says what was expected.
Result<std::string> ParseStateFile(std::string_view value);

struct Config {
  ExecConfig exec;
  EventsConfig events;
  TcpConfig tcp;
  WorkloadsConfig workloads;
  BpfConfig bpf;
};

// --web.config.file, in the Prometheus exporter-toolkit format
// (docs/web-configuration.md there): TLS, bcrypt basic auth and a request rate
// limit. Relative file names are relative to the web config file's folder.
struct TlsServerConfig {
  std::string cert_file;  // PEM files ...
  std::string key_file;
  std::string client_ca_file;
  std::string cert;  // ... or the PEM text inline
  std::string key;
  std::string client_ca;
  // NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven,
  // RequireAndVerifyClientCert (Go's tls.ClientAuthType names).
  std::string client_auth_type = "NoClientCert";
  std::vector<std::string> client_allowed_sans;
  int min_version = 0x0303;  // TLS 1.2, as the wire spells it
  int max_version = 0x0304;  // TLS 1.3
  std::vector<std::string> cipher_suites;  // IANA (= Go) names, TLS 1.2 and below
  std::vector<std::string> curve_preferences;  // CurveP256, CurveP384, CurveP521, X25519
  bool prefer_server_cipher_suites = true;

  bool enabled() const { return !cert_file.empty() || !cert.empty(); }
};

struct WebConfig {
  TlsServerConfig tls;
  std::map<std::string, std::string> basic_auth_users;  // user -> bcrypt hash
  double rate_limit_interval_seconds = 0;  // 0: no rate limit
  uint32_t rate_limit_burst = 0;
};
Result<WebConfig> ParseWebConfig(std::string_view yaml, const std::string& file_name);
Result<WebConfig> LoadWebConfigFile(const std::string& path);

// Config files are small; anything bigger is a mistake (a log, a device) and
// would cost seconds of parsing.
inline constexpr size_t kMaxConfigBytes = 256 * 1024;

// Reads a config file: a regular file (symlinks followed) of at most
// kMaxConfigBytes, opened non-blocking so a FIFO cannot hang start-up.
// `what` names it in errors ("config", "web config").
Result<std::string> ReadConfigFile(const std::string& what, const std::string& path);

// "5s", "250ms", "1m30s" (Go's time.ParseDuration units ns..h) -> seconds.
Result<double> ParseDuration(std::string_view text);

// Parses YAML text. Errors are one line naming the file, the line and the
// key: "execflow.yaml:7: exec.max_uids: expected an integer from 1 to 1048576, got 'lots'".
Result<Config> ParseConfig(std::string_view yaml, const std::string& file_name);
Result<Config> LoadConfigFile(const std::string& path);

}  // namespace execflow
