#include "exporter/events/event_log.h"

#include <ctime>

#include <nlohmann/json.hpp>

namespace execflow {

namespace {

// Invalid UTF-8 becomes U+FFFD; valid UTF-8 is kept as it is.
std::string Dump(const nlohmann::ordered_json& j) {
  return j.dump(-1, ' ', /*ensure_ascii=*/false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace

void AppendJsonString(std::string& out, std::string_view s) { out += Dump(s); }

std::string ToJson(const ExecRecord& r) {
  char ts[64];
  std::time_t secs = r.time_ns / 1000000000;
  std::tm tm;
  gmtime_r(&secs, &tm);
  size_t n = std::strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(ts + n, sizeof(ts) - n, ".%09lldZ",
                static_cast<long long>(r.time_ns % 1000000000));
  return Dump({{"time", ts},
               {"pid", r.pid},
               {"ppid", r.ppid},
               {"uid", r.uid},
               {"gid", r.gid},
               {"cgroup_id", r.cgroup_id},
               {"namespace", r.k8s_namespace},
               {"pod", r.pod},
               {"container", r.container},
               {"comm", r.comm},
               {"filename", r.filename}});
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
