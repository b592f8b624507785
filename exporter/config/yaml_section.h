#pragma once

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "exporter/common/result.h"
#include "exporter/common/shown.h"

namespace execflow {

// Strict YAML for the config and web config: one document, no unknown or repeated keys,
// values checked; one-line errors name file, line, key, echoing no more than Shown().

// Walks one YAML mapping, refusing unknown keys; handlers return errors without location.
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

  // Only name-like unknown keys are shown: another file (/etc/shadow) must not leak to logs.
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

// The handlers a Section runs for its keys.
Section::Handler Bool(bool* out);
// An integer from min to max.
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
Section::Handler Duration(std::chrono::nanoseconds* out, double min_s, double max_s);
Section::Handler OneOf(std::string* out, std::vector<std::string> allowed);
Section::Handler String(std::string* out, size_t max_size = 4096);
// A string that may be empty (empty: find it out).
Section::Handler OptionalString(std::string* out);
// A list of distinct values from `allowed`.
Section::Handler SubsetOf(std::vector<std::string>* out, std::vector<std::string> allowed);
// A list of strings, each from `allowed` when that is not empty.
Section::Handler List(std::vector<std::string>* out, std::vector<std::string> allowed = {});
// A scalar checked by `parse` (ParsePinPath, ParseStateFile).
Section::Handler Parsed(std::string* out, Result<std::string> (*parse)(std::string_view));
Section::Handler Nested(const Section& s);

// The one YAML document of `yaml` (see LoadYaml in yaml_section.cc).
Result<YAML::Node> LoadYaml(std::string_view yaml, const std::string& file_name);

// Anything bigger is a mistake (a log, a device) and would cost seconds of parsing.
inline constexpr size_t kMaxConfigBytes = 256 * 1024;

// A regular file (symlinks followed) of at most kMaxConfigBytes, opened non-blocking so
// a FIFO cannot hang start-up; `what` ("config", "web config") names it in errors.
Result<std::string> ReadConfigFile(const std::string& what, const std::string& path);

// "5s", "250ms", "1m30s" (Go's time.ParseDuration units ns..h) -> seconds.
Result<double> ParseDuration(std::string_view text);

// `path` relative to the folder of `config_file` unless it is absolute.
std::string JoinDir(const std::string& config_file, const std::string& path);

}  // namespace execflow
