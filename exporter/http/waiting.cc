#include "exporter/http/waiting.h"

namespace execflow {

WaitingConnections::WaitingConnections(size_t max_waiting, std::function<void(Worker)> close)
    : max_waiting_(max_waiting), close_(std::move(close)) {}

void WaitingConnections::Accepted(Worker worker, Clock::time_point now) {
  std::lock_guard lock(mu_);
  if (entries_.emplace(worker, Entry{State::kWaiting, now}).second) ++waiting_;
  CloseOldestWhileTooMany();
}

void WaitingConnections::Waiting(Worker worker, Clock::time_point now) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(worker);
  if (it != entries_.end() && it->second.state == State::kServing) {
    it->second.state = State::kWaiting;
    it->second.since = now;
    ++waiting_;
  }
  CloseOldestWhileTooMany();
}

void WaitingConnections::Serving(Worker worker) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(worker);
  if (it == entries_.end() || it->second.state != State::kWaiting) return;
  it->second.state = State::kServing;
  --waiting_;
}

void WaitingConnections::Closed(Worker worker) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(worker);
  if (it == entries_.end()) return;
  if (it->second.state == State::kWaiting) --waiting_;
  if (it->second.state == State::kClosing) --closing_;
  entries_.erase(it);
}

void WaitingConnections::CloseOldestWhileTooMany() {
  for (const auto& [worker, e] : entries_) {
    if (e.state == State::kClosing) close_(worker);
  }
  while (max_waiting_ > 0 && waiting_ > max_waiting_) {
    auto oldest = entries_.end();
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->second.state == State::kWaiting &&
          (oldest == entries_.end() || it->second.since < oldest->second.since)) {
        oldest = it;
      }
    }
    if (oldest == entries_.end()) return;
    // Off the count at once: its worker ends the connection and calls Closed().
    oldest->second.state = State::kClosing;
    --waiting_;
    ++closing_;
    ++closed_;
    close_(oldest->first);
    changed_.notify_all();
  }
}

void WaitingConnections::RetryUntilStopped(std::chrono::milliseconds interval) {
  std::unique_lock lock(mu_);
  while (!stopped_) {
    if (closing_ == 0) {
      changed_.wait(lock);
      continue;
    }
    changed_.wait_for(lock, interval);
    for (const auto& [worker, e] : entries_) {
      if (e.state == State::kClosing && !stopped_) close_(worker);
    }
  }
}

void WaitingConnections::Stop() {
  std::lock_guard lock(mu_);
  stopped_ = true;
  changed_.notify_all();
}

size_t WaitingConnections::waiting() {
  std::lock_guard lock(mu_);
  return waiting_;
}

uint64_t WaitingConnections::closed() {
  std::lock_guard lock(mu_);
  return closed_;
}

}  // namespace execflow
