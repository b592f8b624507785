#pragma once

#include <string>
#include <vector>

#include "exporter/common/unique_fd.h"
#include "exporter/common/result.h"

namespace execflow {

// --web.systemd-socket: the sockets systemd passed this process, taken with
// sd_listen_fds(3): LISTEN_PID must name this process, and LISTEN_FDS of them
// start at descriptor 3. Each is made close-on-exec, and LISTEN_PID,
// LISTEN_FDS and LISTEN_FDNAMES leave the environment. Each must be a
// listening TCP socket (ListenStream=[ADDRESS:]PORT with Accept=no), and IPv4
// unless civetweb has IPv6: an error names the first that is not and what it
// is instead.
Result<std::vector<UniqueFd>> SystemdSockets();

// Where a socket is bound: "0.0.0.0:9741", "[::]:9741"; "?" when it cannot be
// said.
std::string SocketAddress(int fd);

}  // namespace execflow
