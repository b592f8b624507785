#include "exporter/events/event_log.h"

#include <algorithm>
#include <ctime>

#include <nlohmann/json.hpp>

#include "exporter/common/shown.h"

namespace execflow {

namespace {

// Invalid UTF-8 becomes U+FFFD; valid UTF-8 is kept as it is.
std::string Dump(const nlohmann::ordered_json& j) {
  return j.dump(-1, ' ', /*ensure_ascii=*/false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace

void AppendJsonString(std::string& out, std::string_view s) { out += Dump(s); }

void SplitArgs(std::string_view area, std::optional<uint32_t> size, ExecRecord* out) {
  out->args.clear();
  out->args_bytes = size;
  out->args_truncated = !size || area.size() < *size;
  while (!area.empty()) {
    const size_t nul = area.find('\0');
    out->args.emplace_back(area.substr(0, nul));  // npos: a cut last argument
    if (nul == std::string_view::npos) break;
    area.remove_prefix(nul + 1);
  }
}

std::string ToJson(const ExecRecord& r) {
  char ts[64];
  std::time_t secs = r.time_ns / 1000000000;
  std::tm tm;
  gmtime_r(&secs, &tm);
  size_t n = std::strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(ts + n, sizeof(ts) - n, ".%09lldZ",
                static_cast<long long>(r.time_ns % 1000000000));
  return Dump({{"seq", r.seq},
               {"time", ts},
               {"pid", r.pid},
               {"ppid", r.ppid},
               {"uid", r.uid},
               {"gid", r.gid},
               {"cgroup_id", r.cgroup_id},
               {"namespace", r.k8s_namespace},
               {"pod", r.pod},
               {"container", r.container},
               {"comm", r.comm},
               {"filename", r.filename},
               {"args", r.args},
               {"args_bytes", r.args_bytes ? nlohmann::ordered_json(*r.args_bytes) : nlohmann::ordered_json()},
               {"args_truncated", r.args_truncated},
               {"errno", r.error ? nlohmann::ordered_json(ErrnoName(r.error)) : nlohmann::ordered_json()}});
}

void EventLog::Push(ExecRecord r) {
  std::lock_guard lock(mu_);
  last_seq_ = r.seq;
  if (capacity_ == 0) {
    evicted_through_ = r.seq;
    return;
  }
  if (records_.size() == capacity_) {
    evicted_through_ = records_.front().seq;
    records_.pop_front();
  }
  records_.push_back(std::move(r));
}

std::string EventLog::JsonAfter(uint64_t after, size_t limit) const {
  std::lock_guard lock(mu_);
  const bool reset = after > last_seq_;
  if (reset) after = 0;
  auto it = records_.begin();
  while (it != records_.end() && it->seq <= after) ++it;
  // The first event after `after` still kept, or one past the newest if none is.
  const uint64_t first = it != records_.end() ? it->seq : last_seq_ + 1;
  const uint64_t lost = first - after - 1;
  const uint64_t evicted = evicted_through_ > after ? std::min(evicted_through_, first - 1) - after : 0;
  uint64_t next = first - 1;  // what is read or lost when none is given
  std::string events = "[";
  for (size_t n = 0; it != records_.end() && n < limit; ++it, ++n) {
    if (n != 0) events += ',';
    events += ToJson(*it);
    next = it->seq;
  }
  events += "]";
  return "{\"events\":" + events + ",\"lost\":" + std::to_string(lost) + ",\"evicted\":" +
         std::to_string(evicted) + ",\"dropped\":" + std::to_string(lost - evicted) + ",\"next\":" +
         std::to_string(next) + ",\"reset\":" + (reset ? "true" : "false") + "}";
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
