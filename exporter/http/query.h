#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "exporter/common/result.h"

namespace execflow {

// The unsigned integer parameter `name` of a URL query ("a=1&limit=20"), in
// any position, percent-decoded by civetweb's own parser. Absent: nullopt.
// Given twice, empty, not a decimal number or above `max`: an error.
Result<std::optional<uint64_t>> QueryUint(std::string_view query, const char* name, uint64_t max);

}  // namespace execflow
