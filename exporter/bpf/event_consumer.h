#pragma once

#include <bpf/libbpf.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "exporter/bpf/handles.h"
#include "exporter/common/result.h"

namespace execflow {

// events.transport: a BPF ring buffer (5.8+), else a perf buffer (one ring per CPU).
enum class Transport { kRingbuf, kPerfbuf };
std::string_view TransportName(Transport t);

// "auto": a ring buffer if this kernel creates a tiny one, else a perf buffer.
Result<Transport> ChooseTransport(std::string_view configured);

// Before load: sizes the ring buffer map to `ringbuf_bytes`, or for a perf buffer makes it
// a one-entry array any kernel creates, never used (the verifier drops that branch).
Result<void> ConfigureTransport(Transport t, bpf_map* ringbuf, uint32_t ringbuf_bytes);

// The reader of a ring buffer or perf buffer. Open makes it, reading nothing yet: from then
// the programs' records wait in the buffer (a perf buffer with no reader open drops them).
// Run starts a thread that hands each record to `on_record` within 100 ms: it polls
// (event_consumer.cc), and a perf buffer also wakes it at a quarter of a CPU's ring.
// Destruction wakes it through an eventfd, delivers what is buffered, and joins.
class EventConsumer {
 public:
  using OnRecord = std::function<void(const void* data, size_t size)>;
  struct Options {
    Transport transport = Transport::kRingbuf;
    int ringbuf_fd = -1;
    int perf_array_fd = -1;
    uint32_t buffer_bytes = 0;  // perf buffer: split over the CPUs
    std::string name;           // "exec events", for errors and the log
  };
  static Result<std::unique_ptr<EventConsumer>> Open(const Options& options, OnRecord on_record);
  void Run();
  ~EventConsumer();

  // Records the kernel reports lost from the perf buffer (its view of the failed
  // submissions the programs count themselves).
  uint64_t perf_lost() const { return perf_lost_.load(std::memory_order_relaxed); }

 private:
  EventConsumer() = default;
  void Loop();
  int Consume();
  static int RingCallback(void* ctx, void* data, size_t size);
  static enum bpf_perf_event_ret PerfCallback(void* ctx, int cpu, struct perf_event_header* event);

  std::string name_;
  OnRecord on_record_;
  RingBufferPtr rb_;
  PerfBufferPtr pb_;
  UniqueFd stop_fd_;
  UniqueFd epoll_fd_;
  std::atomic<uint64_t> perf_lost_{0};
  std::thread thread_;
};

}  // namespace execflow
