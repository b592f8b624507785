#include "exporter/events/event_log.h"

#include <ctime>

#include "exporter/common/utf8.h"

namespace execflow {

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
      size_t n = Utf8CharLength(s, i);
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
