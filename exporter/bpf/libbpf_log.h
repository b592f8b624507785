#pragma once

namespace execflow {

// Routes libbpf's own messages into spdlog: warnings as warn, info as debug
// (libbpf is chatty at info), debug as trace.
void RouteLibbpfLogToSpdlog();

}  // namespace execflow
