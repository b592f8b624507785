#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace execflow {

// One successful exec as user space keeps it.
struct ExecRecord {
  int64_t time_ns = 0;  // wall clock, Unix epoch
  uint32_t pid = 0;
  uint32_t ppid = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t cgroup_id = 0;
  std::string k8s_namespace;  // the workload of cgroup_id; empty on the host
  std::string pod;
  std::string container;
  std::string comm;
  std::string filename;
};

// Appends s as a JSON string literal. Invalid UTF-8 becomes U+FFFD, so a
// hostile file name cannot break the document.
void AppendJsonString(std::string& out, std::string_view s);

// {"time":"2026-11-24T21:50:59.123456789Z","pid":1,...} without a newline.
std::string ToJson(const ExecRecord& r);

// The last `capacity` exec records, newest last. Thread-safe.
class EventLog {
 public:
  explicit EventLog(size_t capacity) : capacity_(capacity) {}
  void Push(ExecRecord r);
  // Up to `limit` newest records as a JSON array, oldest first.
  std::string Json(size_t limit) const;
  std::vector<ExecRecord> Snapshot() const;
  size_t capacity() const { return capacity_; }

 private:
  const size_t capacity_;
  mutable std::mutex mu_;
  std::deque<ExecRecord> records_;
};

}  // namespace execflow
