#include "exporter/config/config.h"

#include <linux/types.h>

#include <limits>
#include <map>

#include "bpf/exec.h"
#include "exporter/config/yaml_section.h"

namespace execflow {

const std::map<std::string, std::vector<std::string>>& HookSettingModes() {
  static const std::map<std::string, std::vector<std::string>> modes = {
      {"exec.hook", {"tp_btf", "tracepoint"}},
      {"exec.failures_hook", {"fexit", "tracepoint"}},
      {"tcp.hook", {"fexit", "kprobe", "tp_btf", "tracepoint"}},
      {"tcp.receive_hook", {"fexit", "kprobe", "tp_btf", "tracepoint"}},
      {"tcp.close_hook", {"tp_btf", "tracepoint"}},
      {"workloads.hook", {"tp_btf", "tracepoint"}},
  };
  return modes;
}

namespace {

// "auto", then the modes of the hook setting `key`, then `extra`.
std::vector<std::string> HookChoices(const std::string& key, std::vector<std::string> extra = {}) {
  std::vector<std::string> out{"auto"};
  const auto& modes = HookSettingModes().at(key);
  out.insert(out.end(), modes.begin(), modes.end());
  out.insert(out.end(), extra.begin(), extra.end());
  return out;
}

Result<void> Validate(const Config& c, const std::string& file) {
  const uint32_t rb = c.events.ring_buffer_bytes;
  if ((rb & (rb - 1)) != 0) {
    return Fail(file + ": events.ring_buffer_bytes: must be a power of two, got " +
                std::to_string(rb));
  }
  if (c.events.output == "file" && c.events.file_path.empty()) {
    return Fail(file + ": events.file.path: required when events.output is file");
  }
  return {};
}

}  // namespace

namespace {

// "off" -> "", else `value` if it is an absolute, normalized path of 1 to
// `max` bytes; `expected` names what it should be, with an example.
Result<std::string> ParseOffOrPath(std::string_view value, const char* expected, size_t max) {
  if (value == "off") return std::string();
  auto bad = [&](const std::string& why) {
    return Fail(std::string("expected off or ") + expected + " (" + why + "), got " + Shown(value));
  };
  if (value.empty() || value.size() > max) return bad("1 to " + std::to_string(max) + " bytes");
  if (value[0] != '/' || value == "/") return bad("absolute, not /");
  if (value.back() == '/') return bad("no trailing /");
  for (char c : value) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) return bad("no spaces or control characters");
  }
  for (size_t start = 1; start <= value.size();) {
    const size_t end = std::min(value.find('/', start), value.size());
    const std::string_view part = value.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return bad("no empty, . or .. components");
    start = end + 1;
  }
  return std::string(value);
}

}  // namespace

Result<std::string> ParsePinPath(std::string_view value) {
  // bpffs names are at most NAME_MAX; the collectors' pins go below.
  return ParseOffOrPath(value, "an absolute path on a bpf filesystem such as /sys/fs/bpf/execflow", 200);
}

Result<std::string> ParseStateFile(std::string_view value) {
  // The temporary file beside it is 4 bytes longer; PATH_MAX is 4096.
  return ParseOffOrPath(value, "an absolute file path such as /run/execflow/state.json", 4000);
}

Result<Config> ParseConfig(std::string_view yaml, const std::string& file_name) {
  Config c;
  constexpr uint64_t kMaxMapEntries = 1 << 20;
  const std::string f = ShownPath(file_name);
  Section exec(f, "exec");
  exec.On("enabled", Bool(&c.exec.enabled))
      .On("hook", OneOf(&c.exec.hook, HookChoices("exec.hook")))
      .On("failures_hook", OneOf(&c.exec.failures_hook, HookChoices("exec.failures_hook", {"off"})))
      .On("labels", SubsetOf(&c.exec.labels, {"uid", "namespace", "pod", "container"}))
      .On("max_uids", Uint(&c.exec.max_uids, 1, kMaxMapEntries))
      .On("max_failure_keys", Uint(&c.exec.max_failure_keys, 1, kMaxMapEntries));
  Section file(f, "events.file");
  file.On("path", String(&c.events.file_path))
      .On("max_size_bytes", Uint(&c.events.file_max_bytes, 4096, std::numeric_limits<uint32_t>::max() * 16ull))
      .On("max_files", Uint(&c.events.file_max_files, 1, 1000));
  Section redact(f, "events.redact");
  redact.On("flags", List(&c.events.redact_flags)).On("url_passwords", Bool(&c.events.redact_url_passwords));
  Section events(f, "events");
  events.On("enabled", Bool(&c.events.enabled))
      .On("ring_buffer_bytes", Uint(&c.events.ring_buffer_bytes, 4096, 1u << 30))
      .On("keep_last", Uint(&c.events.keep_last, 0, 1000000))
      .On("args_max_bytes", Uint(&c.events.args_max_bytes, 0, EXEC_ARGS_MAX))
      .On("failed_execs", Bool(&c.events.failed_execs))
      .On("redact", Nested(redact))
      .On("transport", OneOf(&c.events.transport, {"auto", "ringbuf", "perfbuf"}))
      .On("output", OneOf(&c.events.output, {"none", "stdout", "file"}))
      .On("file", Nested(file));
  Section tcp(f, "tcp");
  tcp.On("enabled", Bool(&c.tcp.enabled))
      .On("hook", OneOf(&c.tcp.hook, HookChoices("tcp.hook")))
      .On("receive_hook", OneOf(&c.tcp.receive_hook, HookChoices("tcp.receive_hook")))
      .On("close_hook", OneOf(&c.tcp.close_hook, HookChoices("tcp.close_hook")))
      .On("counter_storage", OneOf(&c.tcp.counter_storage, {"auto", "socket", "flow_map"}))
      .On("labels", SubsetOf(&c.tcp.labels, {"saddr", "sport", "daddr", "dport", "port", "direction", "namespace", "pod",
                                              "container"}))
      .On("max_series", Uint(&c.tcp.max_series, 1, kMaxMapEntries))
      .On("max_flows", Uint(&c.tcp.max_flows, 1, kMaxMapEntries))
      .On("closed_flow_retention", Duration(&c.tcp.closed_flow_retention, 1.0, 86400.0))
      .On("closed_flow_retention_scrapes", [](const YAML::Node&) -> Result<void> {
        return Fail("was replaced by closed_flow_retention, a duration (default 5m)");
      });
  Section workloads(f, "workloads");
  workloads.On("hook", OneOf(&c.workloads.hook, HookChoices("workloads.hook", {"off"})))
      .On("cgroup_root", OptionalString(&c.workloads.cgroup_root))
      .On("kubelet_log_dir", String(&c.workloads.kubelet_log_dir));
  Section bpf(f, "bpf");
  bpf.On("run_time_stats", Bool(&c.bpf.run_time_stats)).On("pin_path", Parsed(&c.bpf.pin_path, ParsePinPath))
      .On("state_file", Parsed(&c.bpf.state_file, ParseStateFile));
  Section top(f, "");
  top.On("exec", Nested(exec))
      .On("events", Nested(events))
      .On("tcp", Nested(tcp))
      .On("workloads", Nested(workloads))
      .On("bpf", Nested(bpf));

  auto root = LoadYaml(yaml, file_name);
  if (!root) return std::unexpected(root.error());
  if (auto ok = top.Parse(*root); !ok) return std::unexpected(ok.error());
  if (auto ok = Validate(c, f); !ok) return std::unexpected(ok.error());
  return c;
}

Result<Config> LoadConfigFile(const std::string& path) {
  auto text = ReadConfigFile("config", path);
  if (!text) return std::unexpected(text.error());
  return ParseConfig(*text, path);
}

}  // namespace execflow
