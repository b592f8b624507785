#include "exporter/state/state_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "exporter/bpf/handles.h"

namespace execflow {
namespace {

constexpr int kFormat = 1;

std::string DirOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

Result<void> WriteAll(int fd, const std::string& data, const std::string& what) {
  for (size_t done = 0; done < data.size();) {
    const ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Fail("write " + what, errno);
    done += static_cast<size_t>(n);
  }
  return {};
}

}  // namespace

std::string EncodeState(const SavedTables& tables) {
  nlohmann::json doc = {{"format", kFormat}, {"tables", nlohmann::json::object()}};
  for (const auto& [name, t] : tables) {
    nlohmann::json series = nlohmann::json::array();
    for (const SeriesState& s : t.series) {
      nlohmann::json labels = nlohmann::json::array();
      for (const auto& l : s.labels) labels.push_back({l.name, l.value});
      series.push_back({{"labels", std::move(labels)}, {"retired", s.retired}, {"live", s.live}});
    }
    doc["tables"][name] = {{"label_names", t.other_labels}, {"other", t.other}, {"taken", t.taken},
                           {"series", std::move(series)}};
  }
  return doc.dump() + "\n";
}

Result<SavedTables> DecodeState(const std::string& text) {
  // Parsed without exceptions: a damaged file is input, not a programming error.
  const nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Fail("not valid JSON");
  if (!doc.is_object() || !doc.contains("format") || doc["format"] != kFormat) {
    return Fail("not format " + std::to_string(kFormat));
  }
  if (!doc.contains("tables") || !doc["tables"].is_object()) return Fail("no tables object");
  SavedTables out;
  for (const auto& [name, t] : doc["tables"].items()) {
    auto bad = [&](const std::string& why) { return Fail("table " + name + ": " + why); };
    if (!t.is_object() || !t.contains("label_names") || !t["label_names"].is_array() ||
        !t.contains("other") || !t["other"].is_number() || !t.contains("series") || !t["series"].is_array()) {
      return bad("expected label_names, other and series");
    }
    SeriesTableState state;
    for (const auto& n : t["label_names"]) {
      if (!n.is_string()) return bad("a label name is not a string");
      state.other_labels.push_back(n.get<std::string>());
    }
    state.other = t["other"].get<double>();
    if (t.contains("taken")) {
      if (!t["taken"].is_number_unsigned()) return bad("taken is not an unsigned integer");
      state.taken = t["taken"].get<uint64_t>();
    }
    for (const auto& s : t["series"]) {
      if (!s.is_object() || !s.contains("labels") || !s["labels"].is_array() || !s.contains("retired") ||
          !s["retired"].is_number() || !s.contains("live") || !s["live"].is_boolean()) {
        return bad("a series without labels, retired and live");
      }
      SeriesState one;
      for (const auto& l : s["labels"]) {
        if (!l.is_array() || l.size() != 2 || !l[0].is_string() || !l[1].is_string()) {
          return bad("a label is not a [name, value] pair of strings");
        }
        one.labels.push_back({l[0].get<std::string>(), l[1].get<std::string>()});
      }
      one.retired = s["retired"].get<double>();
      one.live = s["live"].get<bool>();
      state.series.push_back(std::move(one));
    }
    out.emplace(name, std::move(state));
  }
  return out;
}

Result<std::optional<std::string>> ReadStateText(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd && errno == ENOENT) return std::nullopt;
  if (!fd) return Fail("open " + path, errno);
  std::string text;
  char buf[65536];
  for (;;) {
    const ssize_t n = read(fd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Fail("read " + path, errno);
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  return text;
}

Result<SavedTables> LoadStateFile(const std::string& path) {
  auto text = ReadStateText(path);
  if (!text) return std::unexpected(text.error());
  if (!*text) return SavedTables{};
  auto tables = DecodeState(**text);
  if (!tables) return Fail(path + ": " + tables.error().message);
  return tables;
}

Result<void> WriteStateFile(const std::string& path, const SavedTables& tables) {
  const std::string tmp = path + ".tmp";
  UniqueFd fd(open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd) return Fail("create " + tmp, errno);
  // Explicit, whatever the umask or an earlier owner made of it.
  if (fchmod(fd.get(), 0600) < 0) return Fail("chmod " + tmp, errno);
  if (auto ok = WriteAll(fd.get(), EncodeState(tables), tmp); !ok) return ok;
  if (fsync(fd.get()) < 0) return Fail("fsync " + tmp, errno);
  fd = UniqueFd();
  if (rename(tmp.c_str(), path.c_str()) < 0) return Fail("rename " + tmp + " to " + path, errno);
  UniqueFd dir(open(DirOf(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir) fsync(dir.get());  // the rename itself; best effort
  return {};
}

Result<void> MakeStateDir(const std::string& path) {
  const std::string dir = DirOf(path);
  if (mkdir(dir.c_str(), 0700) == 0) return {};
  if (errno != EEXIST) return Fail("create folder " + dir, errno);
  struct stat st;
  if (stat(dir.c_str(), &st) < 0) return Fail("stat " + dir, errno);
  if (!S_ISDIR(st.st_mode)) return Fail(dir + " is not a folder");
  return {};
}

bool StateFile::Save(const std::string& table, uint64_t version, SeriesTableState state) {
  std::lock_guard lock(mu_);
  auto [it, added] = versions_.try_emplace(table, version);
  if (!added && version <= it->second) return !failing_;
  it->second = version;
  auto& held = tables_[table];
  if (!added && held == state && !failing_) return true;
  held = std::move(state);
  return WriteLocked();
}

bool StateFile::Flush() {
  std::lock_guard lock(mu_);
  return WriteLocked();
}

bool StateFile::WriteLocked() {
  auto ok = WriteStateFile(path_, tables_);
  if (!ok && !failing_) {
    spdlog::warn("state file: {}; totals of closed flows and gone workloads would be lost by a restart",
                 ok.error().message);
  } else if (ok && failing_) {
    spdlog::info("state file: {} written again", path_);
  }
  failing_ = !ok;
  return ok.has_value();
}

}  // namespace execflow
