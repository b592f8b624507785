#pragma once

#include <pthread.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <type_traits>
#include <unordered_map>

namespace execflow {

// The workers that wait for a client, and which connection to close when too
// many do.
//
// civetweb gives a connection one worker thread from accept to close, and the
// worker waits for the client for as long as the read timeout allows: for the
// TLS handshake, for the request's head, and, kept alive, for the next request.
// A client that sends its head a byte a second holds a worker all that time,
// so --web.max-connections slow clients take every worker, and a probe waits
// in the accept queue behind them until their timeouts: with 300 such clients
// and 256 workers, /healthz took longer than the kubelet's 2 s one time in
// three. civetweb cannot tell a probe from a slow client before a worker has
// read its request, so neither a worker kept for probes nor probes answered
// ahead of the queue can be built on it; and a bound per client address
// stops one slow address, not many, and the kubelet may share its address
// with the slow clients (a node, a NAT). This bounds the waiting instead:
// when more than `max_waiting` workers wait (the server keeps one worker in
// eight out of that), the connection that has waited longest is closed, so a
// worker is always free for a new connection, whoever sends it. A probe, or a
// scrape, sends its whole head at once and is served as soon as a worker picks
// it up; the slow clients, from any number of addresses, share the rest.
class WaitingConnections {
 public:
  using Clock = std::chrono::steady_clock;
  // A worker thread; civetweb's connection ends when its wait is interrupted.
  using Worker = pthread_t;
  static_assert(std::is_integral_v<Worker>, "Worker is a map key");
  // `close` is called, with the table locked, on the worker of each
  // connection to close: its connection cannot end meanwhile (Closed() waits
  // for the lock). It is called again, at each later Accepted() or Waiting(),
  // for as long as that connection has not ended (an interruption can come
  // just between two waits). 0: no limit.
  WaitingConnections(size_t max_waiting, std::function<void(Worker)> close);

  // The worker starts waiting on a new connection; nothing when it already
  // does (a TLS connection is registered at its handshake and again when
  // civetweb starts reading its first request).
  void Accepted(Worker worker, Clock::time_point now);
  // The worker has served a request and waits for the next one.
  void Waiting(Worker worker, Clock::time_point now);
  // The worker has read a request head and serves it.
  void Serving(Worker worker);
  // The worker's connection ends.
  void Closed(Worker worker);

  size_t waiting();
  uint64_t closed();  // connections closed for waiting longest

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
  std::unordered_map<Worker, Entry> entries_;
  size_t waiting_ = 0;
  uint64_t closed_ = 0;
};

}  // namespace execflow
