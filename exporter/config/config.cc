#include "exporter/config/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <sstream>

#include "exporter/bpf/hooks.h"

namespace execflow {
namespace {

// "auto", then the modes of the hook group the key sets, then `extra`.
std::vector<std::string> HookChoices(const std::vector<HookGroup>& groups, const std::string& key,
                                     std::vector<std::string> extra = {}) {
  std::vector<std::string> out{"auto"};
  for (const auto& g : groups) {
    if (g.config_key == key) {
      for (auto& m : HookModes(g)) out.push_back(std::move(m));
    }
  }
  out.insert(out.end(), extra.begin(), extra.end());
  return out;
}

// Walks one YAML mapping, rejecting keys it does not know. Each handler
// parses its value or returns an error message without the location prefix.
class Section {
 public:
  using Handler = std::function<Result<void>(const YAML::Node&)>;

  Section(const std::string& file, std::string path) : file_(file), path_(std::move(path)) {}

  Section& On(const std::string& key, Handler h) {
    handlers_.emplace(key, std::move(h));
    return *this;
  }

  Result<void> Parse(const YAML::Node& node) const {
    if (!node || node.IsNull()) return {};
    if (!node.IsMap()) return Error(node, path_.empty() ? "top level" : path_, "expected a mapping");
    for (const auto& kv : node) {
      const std::string key = kv.first.Scalar();
      auto h = handlers_.find(key);
      if (h == handlers_.end()) {
        std::string known;
        for (const auto& [k, _] : handlers_) known += (known.empty() ? "" : ", ") + k;
        return Error(kv.first, Qualified(key), "unknown key (known: " + known + ")");
      }
      if (auto ok = h->second(kv.second); !ok) {
        return Error(kv.second, Qualified(key), ok.error().message);
      }
    }
    return {};
  }

  std::string Qualified(const std::string& key) const {
    return path_.empty() ? key : path_ + "." + key;
  }

 private:
  std::unexpected<execflow::Error> Error(const YAML::Node& at, const std::string& key,
                                         const std::string& msg) const {
    // A nested section already prefixed its own error.
    if (msg.rfind(file_ + ":", 0) == 0) return Fail(msg);
    return Fail(file_ + ":" + std::to_string(at.Mark().line + 1) + ": " + key + ": " + msg);
  }

  const std::string& file_;
  std::string path_;
  std::map<std::string, Handler> handlers_;
};

Section::Handler Bool(bool* out) {
  return [out](const YAML::Node& n) -> Result<void> {
    const std::string s = n.IsScalar() ? n.Scalar() : "";
    if (s == "true") *out = true;
    else if (s == "false") *out = false;
    else return Fail("expected true or false, got '" + s + "'");
    return {};
  };
}

template <typename T>
Section::Handler Uint(T* out, uint64_t min, uint64_t max) {
  return [=](const YAML::Node& n) -> Result<void> {
    const std::string s = n.IsScalar() ? n.Scalar() : "";
    uint64_t v = 0;
    bool ok = !s.empty() && s.size() <= 20;
    for (char c : s) ok = ok && c >= '0' && c <= '9';
    if (ok) {
      try {
        v = std::stoull(s);
      } catch (...) {
        ok = false;
      }
    }
    if (!ok || v < min || v > max) {
      return Fail("expected an integer from " + std::to_string(min) + " to " +
                  std::to_string(max) + ", got '" + s + "'");
    }
    *out = static_cast<T>(v);
    return {};
  };
}

Section::Handler OneOf(std::string* out, std::vector<std::string> allowed) {
  return [=](const YAML::Node& n) -> Result<void> {
    const std::string s = n.IsScalar() ? n.Scalar() : "";
    for (const auto& a : allowed) {
      if (s == a) {
        *out = s;
        return {};
      }
    }
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
    return Fail("expected one of " + list + ", got '" + s + "'");
  };
}

Section::Handler String(std::string* out) {
  return [out](const YAML::Node& n) -> Result<void> {
    if (!n.IsScalar() || n.Scalar().empty()) return Fail("expected a non-empty string");
    *out = n.Scalar();
    return {};
  };
}

// A list of distinct values from `allowed`.
Section::Handler SubsetOf(std::vector<std::string>* out, std::vector<std::string> allowed) {
  return [=](const YAML::Node& n) -> Result<void> {
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
    if (!n.IsSequence()) return Fail("expected a list of " + list);
    std::vector<std::string> got;
    for (const auto& item : n) {
      const std::string v = item.IsScalar() ? item.Scalar() : "";
      if (std::find(allowed.begin(), allowed.end(), v) == allowed.end()) {
        return Fail("expected a list of " + list + ", got '" + v + "'");
      }
      if (std::find(got.begin(), got.end(), v) != got.end()) return Fail("'" + v + "' is listed twice");
      got.push_back(v);
    }
    *out = got;
    return {};
  };
}

Section::Handler Nested(const Section& s) {
  return [&s](const YAML::Node& n) { return s.Parse(n); };
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

Result<std::string> ReadFile(const std::string& what, const std::string& path) {
  std::ifstream in(path);
  if (!in) return Fail("read " + what + " " + path, errno);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Result<YAML::Node> LoadYaml(std::string_view yaml, const std::string& file_name) {
  try {
    return YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return Fail(file_name + ":" + std::to_string(e.mark.line + 1) + ": invalid YAML: " + e.msg);
  }
}

}  // namespace

Result<Config> ParseConfig(std::string_view yaml, const std::string& file_name) {
  Config c;
  constexpr uint64_t kMaxMapEntries = 1 << 20;
  Section exec(file_name, "exec");
  exec.On("enabled", Bool(&c.exec.enabled))
      .On("hook", OneOf(&c.exec.hook, HookChoices(ExecHooks(), "exec.hook")))
      .On("failures_hook", OneOf(&c.exec.failures_hook, HookChoices(ExecHooks(), "exec.failures_hook", {"off"})))
      .On("max_uids", Uint(&c.exec.max_uids, 1, kMaxMapEntries))
      .On("max_failure_keys", Uint(&c.exec.max_failure_keys, 1, kMaxMapEntries));
  Section file(file_name, "events.file");
  file.On("path", String(&c.events.file_path))
      .On("max_size_bytes", Uint(&c.events.file_max_bytes, 4096, std::numeric_limits<uint32_t>::max() * 16ull))
      .On("max_files", Uint(&c.events.file_max_files, 1, 1000));
  Section events(file_name, "events");
  events.On("enabled", Bool(&c.events.enabled))
      .On("ring_buffer_bytes", Uint(&c.events.ring_buffer_bytes, 4096, 1u << 30))
      .On("keep_last", Uint(&c.events.keep_last, 0, 1000000))
      .On("transport", OneOf(&c.events.transport, {"auto", "ringbuf", "perfbuf"}))
      .On("output", OneOf(&c.events.output, {"none", "stdout", "file"}))
      .On("file", Nested(file));
  Section tcp(file_name, "tcp");
  tcp.On("enabled", Bool(&c.tcp.enabled))
      .On("hook", OneOf(&c.tcp.hook, HookChoices(TcpHooks(), "tcp.hook")))
      .On("close_hook", OneOf(&c.tcp.close_hook, HookChoices(TcpHooks(), "tcp.close_hook")))
      .On("labels", SubsetOf(&c.tcp.labels, {"saddr", "sport", "daddr", "dport"}))
      .On("max_series", Uint(&c.tcp.max_series, 1, kMaxMapEntries))
      .On("max_flows", Uint(&c.tcp.max_flows, 1, kMaxMapEntries))
      .On("closed_flow_retention_scrapes", Uint(&c.tcp.closed_flow_retention_scrapes, 1, 1000000));
  Section bpf(file_name, "bpf");
  bpf.On("run_time_stats", Bool(&c.bpf.run_time_stats));
  Section top(file_name, "");
  top.On("exec", Nested(exec))
      .On("events", Nested(events))
      .On("tcp", Nested(tcp))
      .On("bpf", Nested(bpf));

  auto root = LoadYaml(yaml, file_name);
  if (!root) return std::unexpected(root.error());
  if (auto ok = top.Parse(*root); !ok) return std::unexpected(ok.error());
  if (auto ok = Validate(c, file_name); !ok) return std::unexpected(ok.error());
  return c;
}

Result<Config> LoadConfigFile(const std::string& path) {
  auto text = ReadFile("config", path);
  if (!text) return std::unexpected(text.error());
  return ParseConfig(*text, path);
}

Result<WebConfig> ParseWebConfig(std::string_view yaml, const std::string& file_name) {
  WebConfig w;
  Section tls(file_name, "tls_server_config");
  tls.On("cert_file", String(&w.tls_cert_file)).On("key_file", String(&w.tls_key_file));
  Section top(file_name, "");
  top.On("tls_server_config", Nested(tls))
      .On("basic_auth_users", [&w](const YAML::Node& n) -> Result<void> {
        if (!n.IsMap()) return Fail("expected a mapping of user: bcrypt hash");
        for (const auto& kv : n) {
          const std::string user = kv.first.Scalar();
          const std::string hash = kv.second.IsScalar() ? kv.second.Scalar() : "";
          // $2a$, $2b$, $2y$: bcrypt, as htpasswd -B writes it.
          if (hash.size() != 60 || hash.rfind("$2", 0) != 0) {
            return Fail("user '" + user + "': expected a bcrypt hash (htpasswd -nBC 10 " + user + ")");
          }
          w.basic_auth_users[user] = hash;
        }
        return {};
      });
  auto root = LoadYaml(yaml, file_name);
  if (!root) return std::unexpected(root.error());
  if (auto ok = top.Parse(*root); !ok) return std::unexpected(ok.error());
  if (w.tls_cert_file.empty() != w.tls_key_file.empty()) {
    return Fail(file_name + ": tls_server_config: cert_file and key_file go together");
  }
  return w;
}

Result<WebConfig> LoadWebConfigFile(const std::string& path) {
  auto text = ReadFile("web config", path);
  if (!text) return std::unexpected(text.error());
  return ParseWebConfig(*text, path);
}

}  // namespace execflow
