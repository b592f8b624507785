#pragma once

#include <chrono>
#include <functional>
#include <thread>

namespace execflow {

// Polls `condition` until it holds; false if it still does not after `hang`,
// a bound on a hang and never the expected time (sanitizer builds on a busy
// 2-CPU machine take many times longer than a plain one). The 1 ms pause
// between polls only spares the CPU.
inline bool WaitFor(const std::function<bool()>& condition,
                    std::chrono::milliseconds hang = std::chrono::seconds(120)) {
  const auto deadline = std::chrono::steady_clock::now() + hang;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace execflow
