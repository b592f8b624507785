#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "exporter/bpf/result.h"

namespace execflow {

struct ExecConfig {
  bool enabled = true;
  std::string hook = "auto";           // auto or a mode of ExecHooks() (exporter/bpf/hooks.h)
  std::string failures_hook = "auto";  // auto, a mode, or off
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
  std::string close_hook = "auto";
  std::vector<std::string> labels = {"saddr", "sport", "daddr", "dport"};
  uint32_t max_series = 10000;
  uint32_t max_flows = 65536;
  uint32_t closed_flow_retention_scrapes = 1;
};

struct BpfConfig {
  bool run_time_stats = false;
};

struct Config {
  ExecConfig exec;
  EventsConfig events;
  TcpConfig tcp;
  BpfConfig bpf;
};

// --web.config.file, the subset of the Prometheus exporter-toolkit format
// that execflow serves: TLS and bcrypt basic auth.
struct WebConfig {
  std::string tls_cert_file;  // both empty: plain HTTP
  std::string tls_key_file;
  std::map<std::string, std::string> basic_auth_users;  // user -> bcrypt hash
};
Result<WebConfig> ParseWebConfig(std::string_view yaml, const std::string& file_name);
Result<WebConfig> LoadWebConfigFile(const std::string& path);

// Parses YAML text. Errors are one line naming the file, the line and the
// key: "execflow.yaml:7: exec.max_uids: expected an integer from 1 to 1048576, got 'lots'".
Result<Config> ParseConfig(std::string_view yaml, const std::string& file_name);
Result<Config> LoadConfigFile(const std::string& path);

}  // namespace execflow
