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

// How BPF programs hand records to user space (events.transport): a BPF ring
// buffer (5.8+), or a perf buffer (one ring per CPU) where there is none.
enum class Transport { kRingbuf, kPerfbuf };
std::string_view TransportName(Transport t);

// "ringbuf" and "perfbuf" are taken as they are; "auto" is a ring buffer if
// this kernel can create one (it tries, with a tiny map), else a perf buffer.
Result<Transport> ChooseTransport(std::string_view configured);

// Before load: for a perf buffer, the object's ring buffer map becomes a
// one-entry array, which every kernel can create and the programs never use
// (the verifier drops the ring buffer branch); for a ring buffer, it is
// sized to `ringbuf_bytes`.
Result<void> ConfigureTransport(Transport t, bpf_map* ringbuf, uint32_t ringbuf_bytes);

// One thread that sleeps in epoll on a ring buffer or perf buffer and hands
// each record to `on_record`, at the latest 100 ms after it was submitted:
// it polls (see event_consumer.cc), and a perf buffer also wakes it when a
// quarter of a CPU's ring is used.
// Destruction wakes it through an eventfd, delivers what is already in the
// buffer, and joins.
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
  static Result<std::unique_ptr<EventConsumer>> Start(const Options& options, OnRecord on_record);
  ~EventConsumer();

  // Records the kernel reported lost from the perf buffer (the programs count
  // their own failed submissions; this is the kernel's view of the same).
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
