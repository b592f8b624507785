#pragma once

#include <string>
#include <string_view>

#include "exporter/common/result.h"

namespace execflow {

// Quotes a logfmt value when it needs it: msg="attach failed: \"x\"".
std::string LogfmtValue(std::string_view v);

// Sets up the default spdlog logger on stderr. format: "logfmt" or "json";
// level: "debug", "info", "warn", "error".
Result<void> SetupLogging(const std::string& level, const std::string& format);

}  // namespace execflow
