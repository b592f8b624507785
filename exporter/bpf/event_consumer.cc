#include "exporter/bpf/event_consumer.h"

#include <bpf/bpf.h>
#include <linux/perf_event.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <bit>
#include <cstring>

namespace execflow {

namespace {
// Ring buffer records go without a wakeup (a wakeup, or the query to batch them, costs
// every event): the reader polls every 100 ms, or 10 ms while records keep coming, so a
// storm cannot fill the buffer (1 MiB holds 3,360 exec events: 336,000 a second at 10 ms).
constexpr int kIdlePollMs = 100;
constexpr int kBusyPollMs = 10;
constexpr int kBusyRecords = 64;
}  // namespace

std::string_view TransportName(Transport t) {
  return t == Transport::kRingbuf ? "ringbuf" : "perfbuf";
}

Result<Transport> ChooseTransport(std::string_view configured) {
  if (configured == "ringbuf") return Transport::kRingbuf;
  if (configured == "perfbuf") return Transport::kPerfbuf;
  if (configured != "auto") return Fail("events.transport '" + std::string(configured) + "' is not one of: auto, ringbuf, perfbuf");
  const int page = static_cast<int>(sysconf(_SC_PAGESIZE));
  UniqueFd fd(bpf_map_create(BPF_MAP_TYPE_RINGBUF, "execflow_probe", 0, 0, page, nullptr));
  if (fd) return Transport::kRingbuf;
  spdlog::info("events: this kernel cannot create a ring buffer ({}); using a perf buffer",
               std::strerror(errno));
  return Transport::kPerfbuf;
}

Result<void> ConfigureTransport(Transport t, bpf_map* ringbuf, uint32_t ringbuf_bytes) {
  int err = 0;
  if (t == Transport::kRingbuf) {
    err = bpf_map__set_max_entries(ringbuf, ringbuf_bytes);
  } else {
    err = bpf_map__set_type(ringbuf, BPF_MAP_TYPE_ARRAY);
    if (!err) err = bpf_map__set_key_size(ringbuf, sizeof(uint32_t));
    if (!err) err = bpf_map__set_value_size(ringbuf, sizeof(uint32_t));
    if (!err) err = bpf_map__set_max_entries(ringbuf, 1);
  }
  if (err) return FailErrno(std::string("size map ") + bpf_map__name(ringbuf), err);
  return {};
}

Result<std::unique_ptr<EventConsumer>> EventConsumer::Open(const Options& o, OnRecord on_record) {
  std::unique_ptr<EventConsumer> c(new EventConsumer());
  c->name_ = o.name;
  c->on_record_ = std::move(on_record);
  int data_fd = -1;
  if (o.transport == Transport::kRingbuf) {
    c->rb_.reset(ring_buffer__new(o.ringbuf_fd, &EventConsumer::RingCallback, c.get(), nullptr));
    if (!c->rb_) return Fail("create ring buffer reader for " + c->name_, errno);
    data_fd = ring_buffer__epoll_fd(c->rb_.get());
  } else {
    // The ring buffer's memory split over the CPUs: a power of two of pages each, at least 1.
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    const int ncpu = std::max(1, libbpf_num_possible_cpus());
    const size_t pages = std::bit_floor(std::max<size_t>(1, o.buffer_bytes / page / ncpu));
    perf_event_attr attr{};
    attr.size = sizeof(attr);
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_BPF_OUTPUT;
    attr.sample_type = PERF_SAMPLE_RAW;
    attr.sample_period = 1;
    // Wake the reader when a quarter of a CPU's ring is used, like the ring buffer.
    attr.watermark = 1;
    attr.wakeup_watermark = static_cast<uint32_t>(std::max<size_t>(1, pages * page / 4));
    c->pb_.reset(perf_buffer__new_raw(o.perf_array_fd, pages, &attr, &EventConsumer::PerfCallback,
                                      c.get(), nullptr));
    if (!c->pb_) return Fail("create perf buffer reader for " + c->name_, errno);
    data_fd = perf_buffer__epoll_fd(c->pb_.get());
  }
  c->stop_fd_.Reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  c->epoll_fd_.Reset(epoll_create1(EPOLL_CLOEXEC));
  if (!c->stop_fd_ || !c->epoll_fd_) return Fail("create eventfd/epoll for " + c->name_, errno);
  // The buffer's own epoll fd is nested in ours, so one wait covers both.
  for (int fd : {data_fd, c->stop_fd_.get()}) {
    epoll_event e{};
    e.events = EPOLLIN;
    e.data.fd = fd;
    if (epoll_ctl(c->epoll_fd_.get(), EPOLL_CTL_ADD, fd, &e) < 0) {
      return Fail("epoll_ctl for " + c->name_, errno);
    }
  }
  return c;
}

void EventConsumer::Run() {
  if (!thread_.joinable()) thread_ = std::thread([this] { Loop(); });
}

int EventConsumer::RingCallback(void* ctx, void* data, size_t size) {
  static_cast<EventConsumer*>(ctx)->on_record_(data, size);
  return 0;
}

enum bpf_perf_event_ret EventConsumer::PerfCallback(void* ctx, int, struct perf_event_header* ev) {
  auto* self = static_cast<EventConsumer*>(ctx);
  if (ev->type == PERF_RECORD_SAMPLE) {
    // PERF_SAMPLE_RAW: the header, a u32 size, then the record.
    const auto* raw = reinterpret_cast<const char*>(ev) + sizeof(*ev);
    uint32_t size;
    std::memcpy(&size, raw, sizeof(size));
    self->on_record_(raw + sizeof(size), size);
  } else if (ev->type == PERF_RECORD_LOST) {
    struct Lost {
      perf_event_header header;
      uint64_t id;
      uint64_t lost;
    };
    self->perf_lost_.fetch_add(reinterpret_cast<const Lost*>(ev)->lost, std::memory_order_relaxed);
  }
  return LIBBPF_PERF_EVENT_CONT;
}

int EventConsumer::Consume() {
  return rb_ ? ring_buffer__consume(rb_.get()) : perf_buffer__consume(pb_.get());
}

void EventConsumer::Loop() {
  epoll_event evs[2];
  int timeout_ms = kIdlePollMs;
  for (;;) {
    int n = epoll_wait(epoll_fd_.get(), evs, 2, timeout_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      spdlog::error("{}: epoll_wait: {}", name_, std::strerror(errno));
      return;
    }
    bool stop = false;
    for (int i = 0; i < n; ++i) stop = stop || evs[i].data.fd == stop_fd_.get();
    const int records = Consume();
    if (records < 0) {
      spdlog::error("{}: consume {}: {}", name_, rb_ ? "ring buffer" : "perf buffer", std::strerror(-records));
    }
    timeout_ms = records >= kBusyRecords ? kBusyPollMs : kIdlePollMs;
    if (stop) return;
  }
}

EventConsumer::~EventConsumer() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    if (write(stop_fd_.get(), &one, sizeof(one)) != sizeof(one)) {
      spdlog::error("{}: wake consumer: {}", name_, std::strerror(errno));
    }
    thread_.join();
  }
}

}  // namespace execflow
