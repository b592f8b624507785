#include "exporter/bpf/ring_consumer.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cstring>

namespace execflow {

namespace {
constexpr int kPollMs = 100;
}  // namespace

Result<std::unique_ptr<RingConsumer>> RingConsumer::Start(int map_fd, std::string name,
                                                          OnRecord on_record) {
  std::unique_ptr<RingConsumer> c(new RingConsumer());
  c->name_ = std::move(name);
  c->on_record_ = std::move(on_record);
  c->rb_.reset(ring_buffer__new(map_fd, &RingConsumer::Callback, c.get(), nullptr));
  if (!c->rb_) return Fail("create ring buffer reader for " + c->name_, errno);
  c->stop_fd_.Reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  c->epoll_fd_.Reset(epoll_create1(EPOLL_CLOEXEC));
  if (!c->stop_fd_ || !c->epoll_fd_) return Fail("create eventfd/epoll for " + c->name_, errno);
  for (int fd : {ring_buffer__epoll_fd(c->rb_.get()), c->stop_fd_.get()}) {
    epoll_event e{};
    e.events = EPOLLIN;
    e.data.fd = fd;
    if (epoll_ctl(c->epoll_fd_.get(), EPOLL_CTL_ADD, fd, &e) < 0) {
      return Fail("epoll_ctl for " + c->name_, errno);
    }
  }
  c->thread_ = std::thread([p = c.get()] { p->Loop(); });
  return c;
}

int RingConsumer::Callback(void* ctx, void* data, size_t size) {
  static_cast<RingConsumer*>(ctx)->on_record_(data, size);
  return 0;
}

void RingConsumer::Loop() {
  epoll_event evs[2];
  for (;;) {
    // The BPF side wakes us only when the buffer is a quarter full (see
    // ringbuf_submit_batched); the timeout bounds how long a record waits.
    int n = epoll_wait(epoll_fd_.get(), evs, 2, kPollMs);
    if (n < 0) {
      if (errno == EINTR) continue;
      spdlog::error("{}: epoll_wait: {}", name_, std::strerror(errno));
      return;
    }
    bool stop = false;
    for (int i = 0; i < n; ++i) stop = stop || evs[i].data.fd == stop_fd_.get();
    if (int err = ring_buffer__consume(rb_.get()); err < 0) {
      spdlog::error("{}: consume ring buffer: {}", name_, std::strerror(-err));
    }
    if (stop) return;
  }
}

RingConsumer::~RingConsumer() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    if (write(stop_fd_.get(), &one, sizeof(one)) != sizeof(one)) {
      spdlog::error("{}: wake consumer: {}", name_, std::strerror(errno));
    }
    thread_.join();
  }
}

}  // namespace execflow
