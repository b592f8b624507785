#include "exporter/state/journal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <utility>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "exporter/state/state_file.h"

namespace execflow {
namespace {

constexpr char kHex[] = "0123456789abcdef";

std::vector<uint64_t> U64s(const void* value, size_t size) {
  std::vector<uint64_t> out(size / sizeof(uint64_t));
  std::memcpy(out.data(), value, out.size() * sizeof(uint64_t));
  return out;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

std::string EncodeTakeRecord(const TakeRecord& r) {
  // By hand: a close writes two, and no field needs escaping (map names are identifiers, keys hex).
  std::string line = "{\"seq\":" + std::to_string(r.seq) + ",\"map\":\"" + r.map + "\",\"key\":\"";
  for (unsigned char b : r.key) {
    line += kHex[b >> 4];
    line += kHex[b & 15];
  }
  line += "\",\"values\":[";
  for (size_t i = 0; i < r.values.size(); ++i) {
    if (i) line += ',';
    line += std::to_string(r.values[i]);
  }
  line += r.taken ? "],\"taken\":true}\n" : "],\"taken\":false}\n";
  return line;
}

Result<TakeRecord> DecodeTakeRecord(std::string_view line) {
  const nlohmann::json doc = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Fail("not valid JSON");
  if (!doc.is_object() || !doc.contains("seq") || !doc["seq"].is_number_unsigned() || !doc.contains("map") ||
      !doc["map"].is_string() || !doc.contains("key") || !doc["key"].is_string() || !doc.contains("values") ||
      !doc["values"].is_array() || !doc.contains("taken") || !doc["taken"].is_boolean()) {
    return Fail("expected seq, map, key, values and taken");
  }
  TakeRecord r;
  r.seq = doc["seq"].get<uint64_t>();
  r.map = doc["map"].get<std::string>();
  r.taken = doc["taken"].get<bool>();
  const std::string hex = doc["key"].get<std::string>();
  if (hex.empty() || hex.size() % 2) return Fail("key is not hex bytes");
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int hi = HexDigit(hex[i]), lo = HexDigit(hex[i + 1]);
    if (hi < 0 || lo < 0) return Fail("key is not hex bytes");
    r.key += static_cast<char>(hi << 4 | lo);
  }
  for (const auto& v : doc["values"]) {
    if (!v.is_number_unsigned()) return Fail("a value is not an unsigned integer");
    r.values.push_back(v.get<uint64_t>());
  }
  return r;
}

Result<JournalContents> LoadTakeJournal(const std::string& path) {
  auto read = ReadStateText(path);
  if (!read) return std::unexpected(read.error());
  const std::string text = read->value_or("");
  JournalContents out;
  size_t line_no = 0;
  for (size_t at = 0; at < text.size();) {
    size_t end = text.find('\n', at);
    const bool torn = end == std::string::npos;
    if (torn) end = text.size();
    ++line_no;
    auto r = DecodeTakeRecord(std::string_view(text).substr(at, end - at));
    if (r && !torn) {
      out.records.push_back(std::move(*r));
    } else {
      out.skipped.push_back(path + " line " + std::to_string(line_no) + ": " +
                            (torn ? "no end of line (a write cut short)" : r.error().message));
    }
    at = end + 1;
  }
  return out;
}

std::string TakeJournalPath(const std::string& state_file, const std::string& collector) {
  return state_file + "." + collector + ".journal";
}

Result<std::unique_ptr<TakeJournal>> TakeJournal::Open(const std::string& path, uint64_t last_seq) {
  UniqueFd fd(open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd) return Fail("open " + path, errno);
  if (fchmod(fd.get(), 0600) < 0) return Fail("chmod " + path, errno);
  struct stat st;
  if (fstat(fd.get(), &st) < 0) return Fail("stat " + path, errno);
  // Cut off a torn last line, so the first new record starts a line of its own.
  off_t whole = st.st_size;
  while (whole > 0) {
    char c;
    if (pread(fd.get(), &c, 1, whole - 1) != 1) return Fail("read " + path, errno);
    if (c == '\n') break;
    --whole;
  }
  if (whole != st.st_size && ftruncate(fd.get(), whole) < 0) return Fail("truncate " + path, errno);
  return std::unique_ptr<TakeJournal>(new TakeJournal(path, std::move(fd), last_seq, whole));
}

Result<void> TakeJournal::Take(const MapReader& map, const void* key, void* value) {
  TakeRecord r{last_seq_ + 1, map.Name(), std::string(static_cast<const char*>(key), map.KeySize()), {}, false};
  if (auto there = map.Lookup(key, value); !there) return there;
  r.values = U64s(value, map.ValueSize());
  if (auto written = Append(r); !written) return written;
  ++last_seq_;
  if (auto took = map.Take(key, value); !took) return took;
  r.values = U64s(value, map.ValueSize());
  r.taken = true;
  // If this fails, the first record still journals the take; a restart uses its values.
  (void)Append(r);
  return {};
}

Result<void> TakeJournal::Append(const TakeRecord& r) {
  const std::string line = EncodeTakeRecord(r);
  ssize_t n;
  do {
    n = write(fd_.get(), line.data(), line.size());
  } while (n < 0 && errno == EINTR);
  const int err = n < 0 ? errno : ENOSPC;
  const bool ok = n == static_cast<ssize_t>(line.size());
  if (ok) {
    size_ += n;
    ++records_;
  } else if (n > 0 && ftruncate(fd_.get(), size_) < 0) {
    spdlog::warn("journal {}: cannot cut off a partial record: {}", path_, std::strerror(errno));
  }
  if (!ok && !failing_) {
    spdlog::warn("journal {}: {}; closed flows and gone workloads stay in the kernel maps until it can be "
                 "written again",
                 path_, n < 0 ? std::strerror(err) : "short write");
  } else if (ok && failing_) {
    spdlog::info("journal {}: written again", path_);
  }
  failing_ = !ok;
  if (!ok) return Fail("write " + path_, err);
  return {};
}

void TakeJournal::Clear() {
  if (ftruncate(fd_.get(), 0) < 0) {
    spdlog::warn("journal {}: truncate: {}", path_, std::strerror(errno));
    return;
  }
  size_ = 0;
  records_ = 0;
}

std::vector<FinishedTake> FinishTakes(const std::vector<TakeRecord>& records,
                                      const std::vector<const MapReader*>& maps, TakeJournal* journal) {
  std::vector<FinishedTake> out;
  std::map<uint64_t, size_t> open;  // seq of a "taking" without its "taken" -> out index
  for (const TakeRecord& r : records) {
    if (auto it = open.find(r.seq); r.taken && it != open.end()) {
      out[it->second].values = r.values;
      open.erase(it);
      continue;
    }
    out.push_back({r.seq, r.map, r.key, r.values});
    if (!r.taken) open.emplace(r.seq, out.size() - 1);
  }
  for (const auto& [seq, i] : open) {
    FinishedTake& t = out[i];
    for (const MapReader* m : maps) {
      if (m->Name() != t.map || m->KeySize() != t.key.size()) continue;
      std::vector<uint64_t> value((m->ValueSize() + 7) / 8);
      if (!m->Take(t.key.data(), value.data())) continue;
      t.values = U64s(value.data(), m->ValueSize());
      if (journal) (void)journal->Finished(seq, t.map, t.key, t.values);
    }
  }
  return out;
}

ResumedJournal ResumeJournal(const std::string& path, bool adopted, uint64_t saved_seq,
                             const std::vector<const MapReader*>& maps) {
  ResumedJournal out;
  std::vector<TakeRecord> records;
  if (adopted) {
    if (auto loaded = LoadTakeJournal(path)) {
      records = std::move(loaded->records);
      if (!loaded->skipped.empty()) {
        spdlog::warn("journal: skipped {} line(s) that are not records, the first: {}", loaded->skipped.size(),
                     loaded->skipped.front());
      }
    } else {
      spdlog::warn("journal: {}: not replayed, so totals taken since the last save restart lower",
                   loaded.error().message);
    }
  }
  uint64_t last = saved_seq;
  for (const TakeRecord& r : records) last = std::max(last, r.seq);
  auto journal = TakeJournal::Open(path, last);
  if (!journal) {
    spdlog::warn("journal: {}: totals taken between two saves would be lost by a kill", journal.error().message);
  } else {
    out.journal = std::move(*journal);
    if (!adopted) out.journal->Clear();  // it went with the BPF state that was replaced
  }
  out.takes = FinishTakes(records, maps, out.journal.get());
  if (!out.takes.empty()) spdlog::info("journal {}: read {} takes", path, out.takes.size());
  return out;
}

}  // namespace execflow
