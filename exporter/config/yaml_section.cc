#include "exporter/config/yaml_section.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/eventhandler.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <sstream>

#include "exporter/common/shown.h"
#include "exporter/common/unique_fd.h"

namespace execflow {

Section::Handler Bool(bool* out) {
  return [out](const YAML::Node& n) -> Result<void> {
    const std::string s = n.IsScalar() ? n.Scalar() : "";
    if (s == "true") *out = true;
    else if (s == "false") *out = false;
    else return Fail("expected true or false, got " + Shown(s));
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

Section::Handler String(std::string* out, size_t max_size) {
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

// A list of strings, each from `allowed` when that is not empty.
Section::Handler List(std::vector<std::string>* out, std::vector<std::string> allowed) {
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

namespace {

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

const char* FileKind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}


}  // namespace


std::string JoinDir(const std::string& config_file, const std::string& path) {
  if (path.empty() || path.front() == '/') return path;
  const auto slash = config_file.rfind('/');
  if (slash == std::string::npos) return path;
  return config_file.substr(0, slash + 1) + path;
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

}  // namespace execflow
