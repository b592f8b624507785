#pragma once

#include <chrono>
#include <functional>
#include <memory>

namespace execflow {

// A clock for the series tables that is one second later at each read; the
// tables read it once per scrape, so a retention of N seconds is N scrapes.
inline std::function<std::chrono::steady_clock::time_point()> TickPerScrape() {
  auto t = std::make_shared<std::chrono::steady_clock::time_point>();
  return [t] { return *t += std::chrono::seconds(1); };
}

}  // namespace execflow
