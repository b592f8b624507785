#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "exporter/common/result.h"

namespace execflow {

// The unsigned integer parameter `name` of a URL query ("a=1&limit=20"), decoded
// by civetweb. Absent: nullopt; repeated, empty, not decimal or over `max`: an error.
Result<std::optional<uint64_t>> QueryUint(std::string_view query, const char* name, uint64_t max);

}  // namespace execflow
