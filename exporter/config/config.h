#pragma once

#include <cstdint>
#include <map>
#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "exporter/common/result.h"

namespace execflow {

struct ExecConfig {
  bool enabled = true;
  std::string hook = "auto";           // auto or a mode of HookSettingModes()
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
  uint32_t args_max_bytes = 4096;        // of each exec's command line; 0: none, at most 30720
  bool failed_execs = true;              // an event per failed attempt too (with exec.failures_hook)
  // Flag names whose values are replaced by ***** in events (exporter/events/redact.h).
  std::vector<std::string> redact_flags = {"password", "passwd", "pwd", "pass", "secret", "token",
                                           "api-key", "apikey", "access-key", "secret-key", "private-key",
                                           "client-secret", "credential", "credentials", "auth"};
  bool redact_url_passwords = true;  // https://user:*****@host
  std::string output = "none";           // none | stdout | file
  std::string file_path = "/var/log/execflow/events.jsonl";
  uint64_t file_max_bytes = 100ull << 20;
  uint32_t file_max_files = 5;
};

struct TcpConfig {
  bool enabled = true;
  std::string hook = "auto";        // auto or a mode of HookSettingModes()
  std::string receive_hook = "auto";  // auto or a mode of TcpHooks()
  std::string close_hook = "auto";
  // Where sends and receives count first: auto (socket storage where the kernel allows it),
  // socket (socket storage, or fail), flow_map (the flow's hash entry, every call).
  std::string counter_storage = "auto";
  std::vector<std::string> labels = {"saddr", "sport", "daddr", "dport", "namespace", "pod", "container"};
  uint32_t max_series = 10000;
  uint32_t max_flows = 65536;
  // A series whose flows all closed is exported this long with its final total.
  std::chrono::nanoseconds closed_flow_retention = std::chrono::minutes(5);
};

// Where namespace, pod and container labels come from (exporter/workloads).
struct WorkloadsConfig {
  // Hook that learns each cgroup's path as it is made: auto, a CgroupHooks() mode, or
  // off (cgroupfs walks only, which miss short-lived ones).
  std::string hook = "auto";
  std::string cgroup_root;                    // "" finds the cgroup v2 mount
  std::string kubelet_log_dir = "/var/log";  // holds pods/ and containers/
};

struct BpfConfig {
  bool run_time_stats = false;
  // Pins maps and links so counting survives restarts (exporter/bpf/pinning.h); "": off.
  std::string pin_path = "/sys/fs/bpf/execflow";
  // Saves totals taken out of the maps (closed flows, gone workloads) for the process
  // that takes the pinned maps over (exporter/state); "": off.
  std::string state_file = "/run/execflow/state.json";
};

// bpf.pin_path: "off" -> "", else an absolute, normalized path; errors say what was expected.
Result<std::string> ParsePinPath(std::string_view value);
// bpf.state_file: the same, for a file ("/run/execflow/state.json").
Result<std::string> ParseStateFile(std::string_view value);

struct Config {
  ExecConfig exec;
  EventsConfig events;
  TcpConfig tcp;
  WorkloadsConfig workloads;
  BpfConfig bpf;
};

// The modes of each hook setting ("exec.hook", ...) besides auto and off: the
// hook table's (exporter/bpf/hooks.cc), as tests/unit/config_test.cc checks.
const std::map<std::string, std::vector<std::string>>& HookSettingModes();

// Parses YAML text. Errors are one line naming the file, the line and the
// key: "execflow.yaml:7: exec.max_uids: expected an integer from 1 to 1048576, got 'lots'".
Result<Config> ParseConfig(std::string_view yaml, const std::string& file_name);
Result<Config> LoadConfigFile(const std::string& path);

}  // namespace execflow
