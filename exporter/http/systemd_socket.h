#pragma once

#include <string>
#include <vector>

#include "exporter/common/unique_fd.h"
#include "exporter/common/result.h"

namespace execflow {

// --web.systemd-socket: the sockets systemd passed (sd_listen_fds(3): LISTEN_PID is this
// process, LISTEN_FDS of them from fd 3), made close-on-exec; LISTEN_PID, LISTEN_FDS and
// LISTEN_FDNAMES leave the environment. Each must listen on TCP (ListenStream=[ADDR:]PORT,
// Accept=no), IPv4 unless civetweb has IPv6, else an error names it and what it is.
Result<std::vector<UniqueFd>> SystemdSockets();

// Where a socket is bound: "0.0.0.0:9741", "[::]:9741"; "?" when unknown.
std::string SocketAddress(int fd);

}  // namespace execflow
