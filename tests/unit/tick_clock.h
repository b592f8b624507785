#pragma once

#include <chrono>
#include <functional>
#include <memory>

namespace execflow {

// A clock for the series tables that is one second later every `reads`
// reads; each table reads it once per scrape, so a retention of N seconds is
// N scrapes (`reads`: how many tables share it, 2 for the TCP collector's).
inline std::function<std::chrono::steady_clock::time_point()> TickPerScrape(int reads = 1) {
  auto t = std::make_shared<std::pair<std::chrono::steady_clock::time_point, int>>();
  return [t, reads] {
    if (t->second++ % reads == 0) t->first += std::chrono::seconds(1);
    return t->first;
  };
}

}  // namespace execflow
