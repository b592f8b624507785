#include "exporter/state/state_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "exporter/common/unique_fd.h"
#include "exporter/state/journal.h"

namespace execflow {
namespace {

// 1: retired totals only (execflow up to issue 13); 2: and every live key's series.
constexpr int kFormat = 2;
constexpr char kWriter[] = "execflow_exporter";

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

std::string Hex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

bool Unhex(std::string_view hex, std::string* out) {
  auto digit = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  if (hex.size() % 2) return false;
  out->clear();
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int hi = digit(hex[i]), lo = digit(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    *out += static_cast<char>(hi << 4 | lo);
  }
  return true;
}

// Why a file or folder with this status cannot be trusted; "" if it can.
std::string Untrusted(const struct stat& st, bool folder) {
  const uid_t me = geteuid();
  if (folder ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) {
    return folder ? "is not a folder" : "is not a regular file";
  }
  if (st.st_uid != me && !(folder && st.st_uid == 0)) {
    return "is owned by uid " + std::to_string(st.st_uid) + ", not by this process's user (uid " +
           std::to_string(me) + ")";
  }
  if (st.st_mode & (S_IWGRP | S_IWOTH)) return "is writable by other users";
  return "";
}

// A table's u64 field: JSON's negative, fractional and too large numbers are refused.
bool U64(const nlohmann::json& v, uint64_t* out) {
  if (!v.is_number_unsigned()) return false;
  *out = v.get<uint64_t>();
  return true;
}

}  // namespace

std::string EncodeState(const SavedState& state) {
  nlohmann::json doc = {{"format", kFormat},
                        {"writer", kWriter},
                        {"tables", nlohmann::json::object()},
                        {"workloads", nlohmann::json::object()}};
  for (const auto& [id, names] : state.workloads) doc["workloads"][std::to_string(id)] = names;
  for (const auto& [name, t] : state.tables) {
    nlohmann::json series = nlohmann::json::array();
    for (const SeriesState& s : t.series) {
      nlohmann::json values = nlohmann::json::array();
      for (const auto& l : s.labels) values.push_back(l.value);
      series.push_back({{"labels", std::move(values)}, {"retired", s.retired}, {"live", s.live}});
    }
    nlohmann::json keys = nlohmann::json::array();
    for (const KeyState& k : t.keys) {
      keys.push_back(k.provisional ? nlohmann::json{Hex(k.key), k.series, k.base, k.seen}
                                   : nlohmann::json{Hex(k.key), k.series, k.base});
    }
    doc["tables"][name] = {{"label_names", t.other_labels}, {"other", t.other}, {"taken", t.taken},
                           {"series", std::move(series)}, {"keys", std::move(keys)}};
  }
  // Labels are made valid UTF-8; a bad byte left is replaced (dump() must not throw in a scrape).
  return doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

namespace {

Result<SavedWorkloads> DecodeWorkloads(const nlohmann::json& doc) {
  SavedWorkloads out;
  for (const auto& [id, names] : doc.items()) {
    auto bad = [&] { return Fail("workload " + id.substr(0, 32) + ": not a cgroup id and 3 names"); };
    if (id.empty() || id.size() > 20 || id.find_first_not_of("0123456789") != std::string::npos) return bad();
    if (!names.is_array() || names.size() != 3) return bad();
    std::vector<std::string> three;
    for (const auto& n : names) {
      if (!n.is_string() || n.get_ref<const std::string&>().size() > kMaxStateLabelBytes) return bad();
      three.push_back(n.get<std::string>());
    }
    errno = 0;
    const uint64_t cgroup = std::strtoull(id.c_str(), nullptr, 10);
    if (errno) return bad();
    out[cgroup] = std::move(three);
  }
  return out;
}

// One series: a value for each of `names` and its retired total.
Result<SeriesState> DecodeSeries(const nlohmann::json& s, const std::vector<std::string>& names) {
  if (!s.is_object() || !s.contains("labels") || !s["labels"].is_array() || !s.contains("retired") ||
      !s.contains("live") || !s["live"].is_boolean()) {
    return Fail("a series without labels, retired and live");
  }
  if (s["labels"].size() != names.size()) return Fail("a series without a value for each label");
  SeriesState one;
  for (size_t i = 0; i < names.size(); ++i) {
    const auto& v = s["labels"][i];
    if (!v.is_string()) return Fail("a label value is not a string");
    if (v.get_ref<const std::string&>().size() > kMaxStateLabelBytes) {
      return Fail("a label value longer than " + std::to_string(kMaxStateLabelBytes) + " bytes");
    }
    one.labels.push_back({names[i], v.get<std::string>()});
  }
  if (!U64(s["retired"], &one.retired)) return Fail("a series' retired total is not a count");
  one.live = s["live"].get<bool>();
  return one;
}

// One key: [hex bytes, series, base], or with the value last seen for a provisional one.
Result<KeyState> DecodeKey(const nlohmann::json& k, size_t series) {
  KeyState one;
  if (!k.is_array() || (k.size() != 3 && k.size() != 4) || !k[0].is_string() ||
      !Unhex(k[0].get<std::string>(), &one.key) || !k[1].is_number_integer() || !U64(k[2], &one.base) ||
      (k.size() == 4 && !U64(k[3], &one.seen))) {
    return Fail("a key is not [hex bytes, series, base] or [hex bytes, series, base, value seen]");
  }
  one.provisional = k.size() == 4;
  one.series = k[1].get<int64_t>();
  if (one.series < -1 || one.series >= static_cast<int64_t>(series)) return Fail("a key's series is out of range");
  return one;
}

Result<SeriesTableState> DecodeTable(const nlohmann::json& t) {
  if (!t.is_object() || !t.contains("label_names") || !t["label_names"].is_array() || !t.contains("other") ||
      !t.contains("taken") || !t.contains("series") || !t["series"].is_array() || !t.contains("keys") ||
      !t["keys"].is_array()) {
    return Fail("expected label_names, other, taken, series and keys");
  }
  SeriesTableState state;
  for (const auto& n : t["label_names"]) {
    if (!n.is_string()) return Fail("a label name is not a string");
    state.other_labels.push_back(n.get<std::string>());
  }
  if (!U64(t["other"], &state.other)) return Fail("other is not a count");
  if (!U64(t["taken"], &state.taken)) return Fail("taken is not a sequence number");
  for (const auto& s : t["series"]) {
    auto one = DecodeSeries(s, state.other_labels);
    if (!one) return std::unexpected(one.error());
    state.series.push_back(std::move(*one));
  }
  for (const auto& k : t["keys"]) {
    auto one = DecodeKey(k, state.series.size());
    if (!one) return std::unexpected(one.error());
    state.keys.push_back(std::move(*one));
  }
  return state;
}

}  // namespace

Result<SavedState> DecodeState(const std::string& text) {
  if (text.size() > kMaxStateFileBytes) return Fail("larger than " + std::to_string(kMaxStateFileBytes) + " bytes");
  // Parsed without exceptions: a damaged file is input, not a programming error.
  const nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Fail("not valid JSON");
  if (!doc.is_object() || !doc.contains("format") || doc["format"] != kFormat) {
    return Fail("not format " + std::to_string(kFormat));
  }
  if (!doc.contains("tables") || !doc["tables"].is_object()) return Fail("no tables object");
  if (!doc.contains("workloads") || !doc["workloads"].is_object()) return Fail("no workloads object");
  SavedState out;
  auto workloads = DecodeWorkloads(doc["workloads"]);
  if (!workloads) return std::unexpected(workloads.error());
  out.workloads = std::move(*workloads);
  for (const auto& [name, t] : doc["tables"].items()) {
    // Table names are ours ("tcp_sent"): anything else is not echoed into an error.
    if (name.empty() || name.size() > 32 || name.find_first_not_of("abcdefghijklmnopqrstuvwxyz_") != std::string::npos) {
      return Fail("a table name that is not one of execflow's");
    }
    auto table = DecodeTable(t);
    if (!table) return Fail("table " + name + ": " + table.error().message);
    out.tables.emplace(name, std::move(*table));
  }
  return out;
}

Result<std::optional<std::string>> ReadStateText(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
  if (!fd && errno == ENOENT) return std::nullopt;
  if (!fd && errno == ELOOP) return Fail(path + " is a symbolic link");
  if (!fd) return Fail("open " + path, errno);
  struct stat st, dir;
  if (fstat(fd.get(), &st) < 0) return Fail("stat " + path, errno);
  if (std::string why = Untrusted(st, false); !why.empty()) return Fail(path + " " + why);
  if (stat(DirOf(path).c_str(), &dir) < 0) return Fail("stat " + DirOf(path), errno);
  if (std::string why = Untrusted(dir, true); !why.empty()) return Fail("its folder " + DirOf(path) + " " + why);
  if (static_cast<uint64_t>(st.st_size) > kMaxStateFileBytes) {
    return Fail(path + " is " + std::to_string(st.st_size) + " bytes, more than the " +
                std::to_string(kMaxStateFileBytes >> 20) + " MiB a state file may be");
  }
  std::string text;
  char buf[65536];
  for (;;) {
    const ssize_t n = read(fd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Fail("read " + path, errno);
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxStateFileBytes) return Fail(path + " grew past the size a state file may be");
  }
  return text;
}

Result<SavedState> LoadStateFile(const std::string& path) {
  auto text = ReadStateText(path);
  if (!text) return std::unexpected(text.error());
  if (!*text) return SavedState{};
  auto tables = DecodeState(**text);
  if (!tables) return Fail(path + ": " + tables.error().message);
  return tables;
}

bool IsOwnStateFile(const std::string& path) {
  auto text = ReadStateText(path);
  if (!text || !*text) return false;
  const std::string& t = **text;
  if (t.empty()) return true;  // an empty journal
  // A journal: its first line is a take record.
  if (DecodeTakeRecord(std::string_view(t).substr(0, t.find('\n')))) return true;
  const nlohmann::json doc = nlohmann::json::parse(t, nullptr, /*allow_exceptions=*/false);
  return !doc.is_discarded() && doc.is_object() && doc.contains("format") &&
         (doc["format"] == 1 || doc["format"] == kFormat) && doc.contains("tables") && doc["tables"].is_object();
}

size_t RemoveStaleTemporaries(const std::string& path) {
  const std::string dir = DirOf(path);
  const std::string prefix = path.substr(path.rfind('/') + 1) + ".tmp.";
  DIR* d = opendir(dir.c_str());
  if (!d) return 0;
  size_t removed = 0;
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (!name.starts_with(prefix) || name.size() == prefix.size() ||
        name.find_first_not_of("0123456789", prefix.size()) != std::string::npos) {
      continue;
    }
    struct stat st;
    const std::string full = dir + "/" + name;
    if (lstat(full.c_str(), &st) == 0 && Untrusted(st, false).empty() && (st.st_mode & 07777) == 0600 &&
        unlink(full.c_str()) == 0) {
      ++removed;
    }
  }
  closedir(d);
  return removed;
}

Result<void> WriteStateFile(const std::string& path, const SavedState& state) {
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  UniqueFd fd(open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd && errno == EEXIST) {
    // Left by an earlier process of the same pid (a container's pid 1) that was killed mid-write.
    RemoveStaleTemporaries(path);
    fd = UniqueFd(open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  }
  if (!fd) return Fail("create " + tmp, errno);
  // Explicit, whatever the umask.
  if (fchmod(fd.get(), 0600) < 0) return Fail("chmod " + tmp, errno);
  auto ok = WriteAll(fd.get(), EncodeState(state), tmp);
  fd = UniqueFd();
  if (ok && rename(tmp.c_str(), path.c_str()) < 0) ok = Fail("rename " + tmp + " to " + path, errno);
  if (!ok) unlink(tmp.c_str());
  return ok;
}

Result<void> MakeStateDir(const std::string& path) {
  const std::string dir = DirOf(path);
  if (mkdir(dir.c_str(), 0700) == 0) return {};
  if (errno != EEXIST) return Fail("create folder " + dir, errno);
  struct stat st;
  if (lstat(dir.c_str(), &st) < 0) return Fail("stat " + dir, errno);
  if (std::string why = Untrusted(st, true); !why.empty()) return Fail(dir + " " + why);
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
  auto ok = WriteStateFile(path_, {tables_, workloads_ ? workloads_() : SavedWorkloads{}});
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
