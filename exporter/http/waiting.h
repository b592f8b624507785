#pragma once

#include <pthread.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <type_traits>
#include <unordered_map>

namespace execflow {

// The workers that wait for a client, and which connection to close when too many do.
// A civetweb worker holds one connection from accept to close, waiting up to the read
// timeout for the TLS handshake, the request head and each kept-alive request. Clients
// sending a byte a second can hold every worker and starve probes (300 of them against
// 256 workers made /healthz miss the kubelet's 2 s one time in three). civetweb cannot
// tell a probe from a slow client before reading its request, and a limit per address
// misses many addresses (or hits the kubelet's, shared by a node or NAT). So when more
// than `max_waiting` workers wait (the server keeps one in eight out of that), the
// connection waiting longest is closed and a worker is always free; probes and scrapes
// send their head at once and are served at once.
class WaitingConnections {
 public:
  using Clock = std::chrono::steady_clock;
  // A worker thread; civetweb's connection ends when its wait is interrupted.
  using Worker = pthread_t;
  static_assert(std::is_integral_v<Worker>, "Worker is a map key");
  // `close` runs, table locked (Closed() waits: the connection cannot end meanwhile),
  // on the worker of each connection to close, and again at each later Accepted() or
  // Waiting() until it ends (the signal may land between waits). `max_waiting` 0: no limit.
  WaitingConnections(size_t max_waiting, std::function<void(Worker)> close);

  // The worker starts waiting on a new connection; no-op if it already does (a
  // TLS connection comes here at its handshake and again at its first request).
  void Accepted(Worker worker, Clock::time_point now);
  // The worker has served a request and waits for the next one.
  void Waiting(Worker worker, Clock::time_point now);
  // The worker has read a request head and serves it.
  void Serving(Worker worker);
  void Closed(Worker worker);

  size_t waiting();
  uint64_t closed();  // connections closed for waiting longest

  // A thread's body: while a connection is closing, calls `close` for it again every
  // `interval` until its worker calls Closed(). Without it, a signal that lands while
  // its worker is between two waits is lost until the next Accepted() or Waiting(),
  // and when every worker holds such a connection none comes. Returns after Stop().
  void RetryUntilStopped(std::chrono::milliseconds interval);
  void Stop();

 private:
  enum class State { kWaiting, kServing, kClosing };
  struct Entry {
    State state;
    Clock::time_point since;
  };
  void CloseOldestWhileTooMany();  // with mu_ held

  const size_t max_waiting_;
  const std::function<void(Worker)> close_;
  std::mutex mu_;
  std::condition_variable changed_;  // a connection started closing, or Stop()
  std::unordered_map<Worker, Entry> entries_;
  size_t waiting_ = 0;
  size_t closing_ = 0;
  uint64_t closed_ = 0;
  bool stopped_ = false;
};

}  // namespace execflow
