#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "exporter/bpf/handles.h"
#include "exporter/bpf/result.h"

namespace execflow {

// One thread that sleeps in epoll on a BPF ring buffer and hands each record
// to `on_record`, at the latest 100 ms after it was submitted. Destruction wakes it through an eventfd, delivers what is
// already in the buffer, and joins.
class RingConsumer {
 public:
  using OnRecord = std::function<void(const void* data, size_t size)>;
  static Result<std::unique_ptr<RingConsumer>> Start(int map_fd, std::string name, OnRecord on_record);
  ~RingConsumer();

 private:
  RingConsumer() = default;
  void Loop();
  static int Callback(void* ctx, void* data, size_t size);

  std::string name_;
  OnRecord on_record_;
  RingBufferPtr rb_;
  UniqueFd stop_fd_;
  UniqueFd epoll_fd_;
  std::thread thread_;
};

}  // namespace execflow
