#include "exporter/config/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <sstream>

#include "exporter/bpf/hooks.h"
#include "exporter/common/unique_fd.h"

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
    std::map<std::string, int> seen;  // key -> line
    for (const auto& kv : node) {
      if (!kv.first.IsScalar()) {
        return Error(kv.first, path_.empty() ? "top level" : path_, "keys must be plain names");
      }
      const std::string key = kv.first.Scalar();
      const int line = kv.first.Mark().line + 1;
      auto h = handlers_.find(key);
      if (h == handlers_.end()) {
        std::string known;
        for (const auto& [k, _] : handlers_) known += (known.empty() ? "" : ", ") + k;
        return Error(kv.first, ShownKey(key), "unknown key (known: " + known + ")");
      }
      // yaml-cpp keeps both entries of a repeated key; a reader would see one.
      if (auto [it, fresh] = seen.emplace(key, line); !fresh) {
        return Error(kv.first, Qualified(key),
                     "duplicate key (first at line " + std::to_string(it->second) + ")");
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

  // An unknown key is shown only when it looks like one of ours: a file that
  // is not an execflow config at all (/etc/shadow) must not leak into the log.
  std::string ShownKey(const std::string& key) const {
    const bool name_like = !key.empty() && key.size() <= 64 &&
                           std::all_of(key.begin(), key.end(), [](char c) {
                             return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                    (c >= '0' && c <= '9') || c == '_' || c == '-';
                           });
    const std::string where = path_.empty() ? "" : path_ + ".";
    return name_like ? where + key : where + "<key not shown>";
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
    else return Fail("expected true or false, got " + Shown(s));
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
                  std::to_string(max) + ", got " + Shown(s));
    }
    *out = static_cast<T>(v);
    return {};
  };
}

// A duration from min_s to max_s seconds: "5m", "30s", "1h".
Section::Handler Duration(std::chrono::nanoseconds* out, double min_s, double max_s) {
  return [=](const YAML::Node& n) -> Result<void> {
    const std::string s = n.IsScalar() ? n.Scalar() : "";
    auto v = ParseDuration(s);
    if (!v) return std::unexpected(v.error());
    if (*v < min_s || *v > max_s) {
      return Fail("expected a duration from " + std::to_string(static_cast<int>(min_s)) + "s to " +
                  std::to_string(static_cast<int>(max_s / 3600)) + "h, got " + Shown(s));
    }
    *out = std::chrono::nanoseconds(static_cast<int64_t>(*v * 1e9));
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
    return Fail("expected one of " + list + ", got " + Shown(s));
  };
}

Section::Handler String(std::string* out, size_t max_size = 4096) {
  return [out, max_size](const YAML::Node& n) -> Result<void> {
    if (!n.IsScalar() || n.Scalar().empty()) return Fail("expected a non-empty string");
    if (n.Scalar().size() > max_size) {
      return Fail("longer than " + std::to_string(max_size) + " bytes");
    }
    if (n.Scalar().find('\0') != std::string::npos) return Fail("contains a NUL byte");
    *out = n.Scalar();
    return {};
  };
}

// A string that may be empty (empty: find it out).
Section::Handler OptionalString(std::string* out) {
  return [out](const YAML::Node& n) -> Result<void> {
    if (!n.IsScalar()) return Fail("expected a string");
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
        return Fail("expected a list of " + list + ", got " + Shown(v));
      }
      if (std::find(got.begin(), got.end(), v) != got.end()) return Fail(Shown(v) + " is listed twice");
      got.push_back(v);
    }
    *out = got;
    return {};
  };
}

// A scalar checked by `parse` (ParsePinPath, ParseStateFile).
Section::Handler Parsed(std::string* out, Result<std::string> (*parse)(std::string_view)) {
  return [out, parse](const YAML::Node& n) -> Result<void> {
    auto p = parse(n.IsScalar() ? n.Scalar() : "");
    if (!p) return std::unexpected(p.error());
    *out = *p;
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

std::string ShownPath(const std::string& path) { return path.size() <= 256 ? path : Shown(path); }

// Sees where documents start, and nothing else.
class DocumentStarts final : public YAML::EventHandler {
 public:
  std::vector<YAML::Mark> marks;
  void OnDocumentStart(const YAML::Mark& m) override { marks.push_back(m); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

std::string YamlError(const std::string& file, const YAML::Mark& mark, std::string msg) {
  msg = msg.substr(0, 100);
  for (char& c : msg) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  return file + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1) +
         ": invalid YAML: " + msg;
}

// Exactly one document: yaml-cpp's Load() would take the first and ignore a
// second one that, read by a person, seems to override it. The documents are
// counted with at most two parser steps: yaml-cpp 0.7 never gets past some
// inputs (one starting with ','), reporting an empty document at the same
// place forever, so LoadAll() would spin and eat memory.
Result<YAML::Node> LoadYaml(std::string_view yaml, const std::string& file_name) {
  const std::string file = ShownPath(file_name);
  const std::string text(yaml);
  try {
    std::istringstream in(text);
    YAML::Parser parser(in);
    DocumentStarts starts;
    for (int i = 0; i < 2 && parser.HandleNextDocument(starts); ++i) {
    }
    if (starts.marks.size() > 1) {
      const YAML::Mark& second = starts.marks[1];
      if (second.pos == starts.marks[0].pos) return Fail(YamlError(file, second, "no document could be read"));
      return Fail(file + ":" + std::to_string(second.line + 1) +
                  ": a second YAML document ('---'): execflow reads exactly one");
    }
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {
    // Only where and yaml-cpp's own words: the offending text stays unquoted,
    // so a file that is not a config at all is not echoed into the log.
    return Fail(YamlError(file, e.mark, e.msg));
  }
}

const char* FileKind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

std::string JoinDir(const std::string& config_file, const std::string& path) {
  if (path.empty() || path.front() == '/') return path;
  const auto slash = config_file.rfind('/');
  if (slash == std::string::npos) return path;
  return config_file.substr(0, slash + 1) + path;
}

// Go's tls.CipherSuites(): the suites exporter-toolkit accepts. The TLS 1.3
// ones are accepted and, as in Go, not configurable.
const std::vector<std::string>& KnownCipherSuites() {
  static const std::vector<std::string> k = {
      "TLS_AES_128_GCM_SHA256",
      "TLS_AES_256_GCM_SHA384",
      "TLS_CHACHA20_POLY1305_SHA256",
      "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
      "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
      "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
      "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
      "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
      "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
      "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
      "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
      "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
      "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
  };
  return k;
}

Section::Handler TlsVersion(int* out) {
  return [out](const YAML::Node& n) -> Result<void> {
    static const std::map<std::string, int> versions = {
        {"TLS10", 0x0301}, {"TLS11", 0x0302}, {"TLS12", 0x0303}, {"TLS13", 0x0304}};
    const std::string s = n.IsScalar() ? n.Scalar() : "";
    auto it = versions.find(s);
    if (it == versions.end()) return Fail("expected one of TLS10, TLS11, TLS12, TLS13, got " + Shown(s));
    *out = it->second;
    return {};
  };
}

// A list of strings, each from `allowed` when that is not empty.
Section::Handler List(std::vector<std::string>* out, std::vector<std::string> allowed = {}) {
  return [=](const YAML::Node& n) -> Result<void> {
    if (!n.IsSequence()) return Fail("expected a list");
    std::vector<std::string> got;
    for (const auto& item : n) {
      if (!item.IsScalar() || item.Scalar().empty() || item.Scalar().size() > 1024) {
        return Fail("expected a list of non-empty strings");
      }
      if (!allowed.empty() &&
          std::find(allowed.begin(), allowed.end(), item.Scalar()) == allowed.end()) {
        return Fail("unknown value " + Shown(item.Scalar()));
      }
      got.push_back(item.Scalar());
    }
    *out = std::move(got);
    return {};
  };
}

// What htpasswd -B writes: $2a$, $2b$ or $2y$, a two-digit cost from 4 to 31
// and 53 characters of bcrypt's base64.
bool IsBcryptHash(const std::string& h) {
  if (h.size() != 60 || h[0] != '$' || h[1] != '2' || h[3] != '$' || h[6] != '$') return false;
  if (h[2] != 'a' && h[2] != 'b' && h[2] != 'y') return false;
  if (h[4] < '0' || h[4] > '9' || h[5] < '0' || h[5] > '9') return false;
  const int cost = (h[4] - '0') * 10 + (h[5] - '0');
  if (cost < 4 || cost > 31) return false;
  return std::all_of(h.begin() + 7, h.end(), [](char c) {
    return c == '.' || c == '/' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9');
  });
}

}  // namespace

Result<std::string> ReadConfigFile(const std::string& what, const std::string& path) {
  const std::string shown = "read " + what + " " + ShownPath(path);
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  if (!fd) return Fail(shown, errno);
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return Fail(shown, errno);
  if (!S_ISREG(st.st_mode)) return Fail(shown + ": " + FileKind(st.st_mode) + ", not a regular file");
  const std::string too_big =
      shown + ": larger than the " + std::to_string(kMaxConfigBytes / 1024) + " KiB limit";
  if (static_cast<uint64_t>(st.st_size) > kMaxConfigBytes) return Fail(too_big);
  std::string text(kMaxConfigBytes + 1, '\0');
  size_t got = 0;
  while (got < text.size()) {
    const ssize_t n = read(fd.get(), text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Fail(shown, errno);
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (got > kMaxConfigBytes) return Fail(too_big);  // it grew while we read
  text.resize(got);
  return text;
}

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

Result<double> ParseDuration(std::string_view text) {
  auto bad = [&] { return Fail("expected a duration such as 5s, 250ms or 1m30s, got " + Shown(text)); };
  if (text.empty() || text.size() > 32) return bad();
  if (text == "0") return 0.0;
  static const std::pair<std::string_view, double> kUnits[] = {
      {"ns", 1e-9}, {"us", 1e-6}, {"\xc2\xb5s", 1e-6}, {"ms", 1e-3}, {"s", 1}, {"m", 60}, {"h", 3600}};
  double total = 0;
  std::string_view rest = text;
  while (!rest.empty()) {
    size_t digits = 0;
    while (digits < rest.size() && ((rest[digits] >= '0' && rest[digits] <= '9') || rest[digits] == '.')) {
      ++digits;
    }
    if (digits == 0) return bad();
    double v = 0;
    auto [p, ec] = std::from_chars(rest.data(), rest.data() + digits, v);
    if (ec != std::errc() || p != rest.data() + digits) return bad();
    rest.remove_prefix(digits);
    bool matched = false;
    for (const auto& [unit, scale] : kUnits) {  // "ms" is tried before "m" and "s"
      if (rest.substr(0, unit.size()) == unit) {
        total += v * scale;
        rest.remove_prefix(unit.size());
        matched = true;
        break;
      }
    }
    if (!matched) return bad();
  }
  if (!std::isfinite(total)) return bad();
  return total;
}

Result<Config> ParseConfig(std::string_view yaml, const std::string& file_name) {
  Config c;
  constexpr uint64_t kMaxMapEntries = 1 << 20;
  const std::string f = ShownPath(file_name);
  Section exec(f, "exec");
  exec.On("enabled", Bool(&c.exec.enabled))
      .On("hook", OneOf(&c.exec.hook, HookChoices(ExecHooks(), "exec.hook")))
      .On("failures_hook", OneOf(&c.exec.failures_hook, HookChoices(ExecHooks(), "exec.failures_hook", {"off"})))
      .On("labels", SubsetOf(&c.exec.labels, {"uid", "namespace", "pod", "container"}))
      .On("max_uids", Uint(&c.exec.max_uids, 1, kMaxMapEntries))
      .On("max_failure_keys", Uint(&c.exec.max_failure_keys, 1, kMaxMapEntries));
  Section file(f, "events.file");
  file.On("path", String(&c.events.file_path))
      .On("max_size_bytes", Uint(&c.events.file_max_bytes, 4096, std::numeric_limits<uint32_t>::max() * 16ull))
      .On("max_files", Uint(&c.events.file_max_files, 1, 1000));
  Section events(f, "events");
  events.On("enabled", Bool(&c.events.enabled))
      .On("ring_buffer_bytes", Uint(&c.events.ring_buffer_bytes, 4096, 1u << 30))
      .On("keep_last", Uint(&c.events.keep_last, 0, 1000000))
      .On("transport", OneOf(&c.events.transport, {"auto", "ringbuf", "perfbuf"}))
      .On("output", OneOf(&c.events.output, {"none", "stdout", "file"}))
      .On("file", Nested(file));
  Section tcp(f, "tcp");
  tcp.On("enabled", Bool(&c.tcp.enabled))
      .On("hook", OneOf(&c.tcp.hook, HookChoices(TcpHooks(), "tcp.hook")))
      .On("receive_hook", OneOf(&c.tcp.receive_hook, HookChoices(TcpHooks(), "tcp.receive_hook")))
      .On("close_hook", OneOf(&c.tcp.close_hook, HookChoices(TcpHooks(), "tcp.close_hook")))
      .On("labels", SubsetOf(&c.tcp.labels, {"saddr", "sport", "daddr", "dport", "namespace", "pod", "container"}))
      .On("max_series", Uint(&c.tcp.max_series, 1, kMaxMapEntries))
      .On("max_flows", Uint(&c.tcp.max_flows, 1, kMaxMapEntries))
      .On("closed_flow_retention", Duration(&c.tcp.closed_flow_retention, 1.0, 86400.0))
      .On("closed_flow_retention_scrapes", [](const YAML::Node&) -> Result<void> {
        return Fail("was replaced by closed_flow_retention, a duration (default 5m)");
      });
  Section workloads(f, "workloads");
  workloads.On("cgroup_root", OptionalString(&c.workloads.cgroup_root))
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

Result<WebConfig> ParseWebConfig(std::string_view yaml, const std::string& file_name) {
  WebConfig w;
  TlsServerConfig& t = w.tls;
  const std::string f = ShownPath(file_name);
  bool tls_present = false;
  Section tls(f, "tls_server_config");
  tls.On("cert_file", String(&t.cert_file))
      .On("key_file", String(&t.key_file))
      .On("client_ca_file", String(&t.client_ca_file))
      .On("cert", String(&t.cert, kMaxConfigBytes))
      .On("key", String(&t.key, kMaxConfigBytes))
      .On("client_ca", String(&t.client_ca, kMaxConfigBytes))
      .On("client_auth_type",
          OneOf(&t.client_auth_type, {"NoClientCert", "RequestClientCert", "RequireAnyClientCert",
                                      "RequireClientCert", "VerifyClientCertIfGiven",
                                      "RequireAndVerifyClientCert"}))
      .On("client_allowed_sans", List(&t.client_allowed_sans))
      .On("min_version", TlsVersion(&t.min_version))
      .On("max_version", TlsVersion(&t.max_version))
      .On("cipher_suites", List(&t.cipher_suites, KnownCipherSuites()))
      .On("curve_preferences",
          List(&t.curve_preferences, {"CurveP256", "CurveP384", "CurveP521", "X25519"}))
      .On("prefer_server_cipher_suites", Bool(&t.prefer_server_cipher_suites));
  bool http2 = true;
  Section http(f, "http_server_config");
  // execflow serves HTTP/1.1 only; http2 is accepted so toolkit files load.
  http.On("http2", Bool(&http2));
  std::string interval = "0s";
  Section rate(f, "rate_limit");
  rate.On("interval", String(&interval, 32)).On("burst", Uint(&w.rate_limit_burst, 0, 1000000));
  Section top(f, "");
  top.On("tls_server_config",
         [&](const YAML::Node& n) {
           tls_present = n && !n.IsNull();
           return tls.Parse(n);
         })
      .On("http_server_config", Nested(http))
      .On("rate_limit", Nested(rate))
      .On("basic_auth_users", [&w](const YAML::Node& n) -> Result<void> {
        if (n.IsNull()) return {};
        if (!n.IsMap()) return Fail("expected a mapping of user: bcrypt hash");
        for (const auto& kv : n) {
          const std::string user = kv.first.IsScalar() ? kv.first.Scalar() : "";
          // Basic auth splits user and password at the first ':'; control
          // bytes are refused in credentials, so such a user could never log in.
          const bool usable = !user.empty() && user.size() <= 256 &&
                              user.find(':') == std::string::npos &&
                              std::none_of(user.begin(), user.end(), [](char c) {
                                return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
                              });
          if (!usable) {
            return Fail("user " + Shown(user) +
                        ": a user name is 1 to 256 bytes without ':' or control characters");
          }
          if (w.basic_auth_users.count(user)) return Fail("user " + Shown(user) + " is listed twice");
          // The hash is a secret: never shown.
          const std::string hash = kv.second.IsScalar() ? kv.second.Scalar() : "";
          if (!IsBcryptHash(hash)) {
            return Fail("user " + Shown(user) + ": expected a bcrypt hash (htpasswd -nBC 10 " + user + ")");
          }
          // Every uncached check, and the dummy hash made at each (re)load,
          // costs 2^cost rounds: 31 is valid bcrypt and would hang both.
          constexpr int kMaxBcryptCost = 17;  // htpasswd -B's own maximum
          if (const int cost = (hash[4] - '0') * 10 + (hash[5] - '0'); cost > kMaxBcryptCost) {
            return Fail("user " + Shown(user) + ": bcrypt cost " + std::to_string(cost) + " is above " +
                        std::to_string(kMaxBcryptCost) + ", the most htpasswd makes (each check would take 2^" +
                        std::to_string(cost) + " rounds); hash the password again with htpasswd -nBC 10 " +
                        user);
          }
          w.basic_auth_users[user] = hash;
        }
        return {};
      });
  auto root = LoadYaml(yaml, file_name);
  if (!root) return std::unexpected(root.error());
  if (auto ok = top.Parse(*root); !ok) return std::unexpected(ok.error());

  auto interval_s = ParseDuration(interval);
  if (!interval_s) return Fail(f + ": rate_limit.interval: " + interval_s.error().message);
  w.rate_limit_interval_seconds = *interval_s;
  if (w.rate_limit_interval_seconds > 0 && w.rate_limit_burst == 0) {
    return Fail(f + ": rate_limit: burst must be at least 1 when interval is set");
  }

  // exporter-toolkit's rules (web/tls_config.go), with its words where it has them.
  const std::string where = f + ": tls_server_config: ";
  const bool any_tls = !t.cert_file.empty() || !t.cert.empty() || !t.key_file.empty() ||
                       !t.key.empty() || !t.client_ca_file.empty() || !t.client_ca.empty();
  if (tls_present || any_tls) {
    if (t.cert_file.empty() && t.cert.empty()) return Fail(where + "missing one of cert or cert_file");
    if (t.key_file.empty() && t.key.empty()) return Fail(where + "missing one of key or key_file");
  }
  if (!t.cert_file.empty() && !t.cert.empty()) return Fail(where + "cert and cert_file are exclusive");
  if (!t.key_file.empty() && !t.key.empty()) return Fail(where + "key and key_file are exclusive");
  if (!t.client_ca_file.empty() && !t.client_ca.empty()) {
    return Fail(where + "client_ca and client_ca_file are exclusive");
  }
  if (t.client_auth_type == "RequireClientCert") t.client_auth_type = "RequireAnyClientCert";
  const bool ca = !t.client_ca_file.empty() || !t.client_ca.empty();
  if (ca && t.client_auth_type == "NoClientCert") {
    return Fail(where + "a client CA is configured but client_auth_type is NoClientCert");
  }
  if (t.client_auth_type == "RequireAndVerifyClientCert" || t.client_auth_type == "VerifyClientCertIfGiven") {
    if (!ca) return Fail(where + "client_auth_type " + t.client_auth_type + " needs client_ca_file");
  }
  if (!t.client_allowed_sans.empty() && t.client_auth_type != "RequireAnyClientCert" &&
      t.client_auth_type != "RequireAndVerifyClientCert") {
    return Fail(where + "client_allowed_sans requires client_auth_type to be one of "
                        "RequireAnyClientCert or RequireAndVerifyClientCert");
  }
  if (t.min_version > t.max_version) return Fail(where + "min_version is above max_version");
  t.cert_file = JoinDir(file_name, t.cert_file);
  t.key_file = JoinDir(file_name, t.key_file);
  t.client_ca_file = JoinDir(file_name, t.client_ca_file);
  return w;
}

Result<WebConfig> LoadWebConfigFile(const std::string& path) {
  auto text = ReadConfigFile("web config", path);
  if (!text) return std::unexpected(text.error());
  return ParseWebConfig(*text, path);
}

}  // namespace execflow
