#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace execflow {

// One successful exec as user space keeps it.
struct ExecRecord {
  // Its place among every exec event the kernel made since the exporter started, delivered
  // or dropped (a full buffer), from 1: a gap before it is events dropped.
  uint64_t seq = 0;
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
  // The command line, each argument apart (argv[0] first), as the new process got it, up to
  // events.args_max_bytes; args_truncated when it was longer (the last argument is then cut).
  std::vector<std::string> args;
  // The whole command line's size: each argument and its NUL; none where a failed attempt's
  // were cut (read back one by one, their whole size is not known).
  std::optional<uint32_t> args_bytes;
  bool args_truncated = false;
  // A failed attempt (execve or execveat returned an error): its errno; filename and args are
  // what it asked for. 0: an exec.
  int error = 0;
};

// The arguments in a NUL-separated area of `len` bytes out of `size` (an exec event's);
// `size` nullopt: more than `len`, how much more unknown.
void SplitArgs(std::string_view area, std::optional<uint32_t> size, ExecRecord* out);

// Appends s as a JSON string literal. Invalid UTF-8 becomes U+FFFD, so a
// hostile file name cannot break the document.
void AppendJsonString(std::string& out, std::string_view s);

// {"time":"2026-11-24T21:50:59.123456789Z","pid":1,...} without a newline.
std::string ToJson(const ExecRecord& r);

// The last `capacity` exec records, newest last. Thread-safe.
class EventLog {
 public:
  explicit EventLog(size_t capacity) : capacity_(capacity) {}
  // Keeps a record (the oldest goes when `capacity` are kept); records come in the
  // order of their seq.
  void Push(ExecRecord r);
  // Up to `limit` newest records as a JSON array, oldest first.
  std::string Json(size_t limit) const;
  // For a reader that has every event up to `after` (0: none yet): up to `limit` of the
  // records that came after it, oldest first, and what it cannot have of those before
  // the first one given, as a JSON object:
  //   {"events": [...], "lost": L, "evicted": E, "dropped": D, "next": S, "reset": false}
  // L = E + D events between `after` and the first given: E no longer kept (keep_last;
  // events dropped among them count here too), D dropped by the kernel (a full buffer).
  // S is the `after` of the next request. An `after` past the newest event (a reader of
  // an exporter that has restarted since) reads from the start, with "reset": true.
  std::string JsonAfter(uint64_t after, size_t limit) const;
  std::vector<ExecRecord> Snapshot() const;
  size_t capacity() const { return capacity_; }

 private:
  const size_t capacity_;
  mutable std::mutex mu_;
  std::deque<ExecRecord> records_;
  uint64_t last_seq_ = 0;  // of the newest event, delivered or dropped
  uint64_t evicted_through_ = 0;  // seq of the newest record no longer kept
};

}  // namespace execflow
