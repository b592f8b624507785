#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <spdlog/sinks/sink.h>

#include "exporter/common/result.h"

namespace execflow {

// The rotating JSON-lines file of events.output: file. It holds every user's
// command lines, so whatever the umask: missing folders are created 0750,
// every file (rotations included) is created 0640 and set to 0640 when opened.
Result<std::shared_ptr<spdlog::sinks::sink>> OpenEventFile(const std::string& path, uint64_t max_bytes,
                                                           uint32_t max_files);

}  // namespace execflow
