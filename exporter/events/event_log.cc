#include "exporter/events/event_log.h"

#include <ctime>

namespace execflow {
namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0.
size_t Utf8SeqLen(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  size_t n;
  uint32_t min;
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) n = 2, min = 0x80;
  else if ((c & 0xF0) == 0xE0) n = 3, min = 0x800;
  else if ((c & 0xF8) == 0xF0) n = 4, min = 0x10000;
  else return 0;
  if (i + n > s.size()) return 0;
  uint32_t cp = c & (0x7F >> n);
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

}  // namespace

void AppendJsonString(std::string& out, std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  out += '"';
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
      ++i;
    } else if (c < 0x20) {
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
      ++i;
    } else {
      size_t n = Utf8SeqLen(s, i);
      if (n == 0) {
        out += "\\ufffd";
        ++i;
      } else {
        out.append(s.substr(i, n));
        i += n;
      }
    }
  }
  out += '"';
}

std::string ToJson(const ExecRecord& r) {
  char ts[64];
  std::time_t secs = r.time_ns / 1000000000;
  std::tm tm;
  gmtime_r(&secs, &tm);
  size_t n = std::strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(ts + n, sizeof(ts) - n, ".%09lldZ",
                static_cast<long long>(r.time_ns % 1000000000));
  std::string out;
  out.reserve(192 + r.filename.size());
  out += "{\"time\":\"";
  out += ts;
  out += "\",\"pid\":" + std::to_string(r.pid);
  out += ",\"ppid\":" + std::to_string(r.ppid);
  out += ",\"uid\":" + std::to_string(r.uid);
  out += ",\"gid\":" + std::to_string(r.gid);
  out += ",\"cgroup_id\":" + std::to_string(r.cgroup_id);
  out += ",\"namespace\":";
  AppendJsonString(out, r.k8s_namespace);
  out += ",\"pod\":";
  AppendJsonString(out, r.pod);
  out += ",\"container\":";
  AppendJsonString(out, r.container);
  out += ",\"comm\":";
  AppendJsonString(out, r.comm);
  out += ",\"filename\":";
  AppendJsonString(out, r.filename);
  out += '}';
  return out;
}

void EventLog::Push(ExecRecord r) {
  if (capacity_ == 0) return;
  std::lock_guard lock(mu_);
  if (records_.size() == capacity_) records_.pop_front();
  records_.push_back(std::move(r));
}

std::vector<ExecRecord> EventLog::Snapshot() const {
  std::lock_guard lock(mu_);
  return {records_.begin(), records_.end()};
}

std::string EventLog::Json(size_t limit) const {
  std::vector<ExecRecord> recs = Snapshot();
  size_t start = recs.size() > limit ? recs.size() - limit : 0;
  std::string out = "[";
  for (size_t i = start; i < recs.size(); ++i) {
    if (i != start) out += ',';
    out += ToJson(recs[i]);
  }
  out += "]";
  return out;
}

}  // namespace execflow
