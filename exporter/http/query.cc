#include "exporter/http/query.h"

#include <civetweb.h>

#include <charconv>
#include <string>

namespace execflow {

Result<std::optional<uint64_t>> QueryUint(std::string_view query, const char* name, uint64_t max) {
  char value[32];
  const std::string bad = std::string(name) + " must be an integer from 0 to " + std::to_string(max);
  const int n = mg_get_var2(query.data(), query.size(), name, value, sizeof(value), 0);
  if (n == -1) return std::nullopt;
  if (n <= 0) return Fail(bad);
  char second[2];
  if (mg_get_var2(query.data(), query.size(), name, second, sizeof(second), 1) != -1) {
    return Fail(std::string(name) + " is given twice");
  }
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(value, value + n, v);
  if (ec != std::errc() || p != value + n || v > max) return Fail(bad);
  return v;
}

}  // namespace execflow
