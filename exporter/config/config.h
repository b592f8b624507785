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
  std::vector<std::string> labels = {"saddr", "sport", "daddr", "dport", "namespace", "pod", "container"};
  uint32_t max_series = 10000;
  uint32_t max_flows = 65536;
  // A series whose flows all closed is exported this long with its final total.
  std::chrono::nanoseconds closed_flow_retention = std::chrono::minutes(5);
};

// Where namespace, pod and container labels come from (exporter/workloads).
struct WorkloadsConfig {
  // Where cgroup paths are learned as each cgroup is made (auto, a mode of
  // CgroupHooks(), or off: cgroupfs walks only, which miss short-lived ones).
  std::string hook = "auto";
  std::string cgroup_root;                    // "" finds the cgroup v2 mount
  std::string kubelet_log_dir = "/var/log";  // holds pods/ and containers/
};

struct BpfConfig {
  bool run_time_stats = false;
  // Where maps and links are pinned so counting goes on across restarts
  // (exporter/bpf/pinning.h); "" (off in the file) pins nothing.
  std::string pin_path = "/sys/fs/bpf/execflow";
  // Where the totals user space took out of the maps (closed flows, gone
  // workloads) are saved for a process that takes the pinned maps over
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

// The modes each hook setting ("exec.hook", ...) takes besides auto (and
// off): those of the hook table, exporter/bpf/hooks.cc, which
// tests/unit/config_test.cc checks they are.
const std::map<std::string, std::vector<std::string>>& HookSettingModes();

// Parses YAML text. Errors are one line naming the file, the line and the
// key: "execflow.yaml:7: exec.max_uids: expected an integer from 1 to 1048576, got 'lots'".
Result<Config> ParseConfig(std::string_view yaml, const std::string& file_name);
Result<Config> LoadConfigFile(const std::string& path);

}  // namespace execflow
