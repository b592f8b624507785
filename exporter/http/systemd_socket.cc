#include "exporter/http/systemd_socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "exporter/common/shown.h"
#include "exporter/http/server.h"

namespace execflow {
namespace {

// getenv()'s pointer dies with unsetenv(): copied first.
std::optional<std::string> Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::optional<std::string>(v) : std::nullopt;
}

// Why a descriptor systemd passed cannot be served; empty when it can.
std::string Unusable(int fd) {
  if (const int r = sd_is_socket(fd, AF_UNSPEC, 0, -1); r <= 0) {
    return r == 0 ? "is not a socket" : std::string("cannot be read: ") + std::strerror(-r);
  }
  if (sd_is_socket_inet(fd, 0, 0, -1, 0) <= 0) {
    const bool unix_socket = sd_is_socket(fd, AF_UNIX, 0, -1) > 0;
    return std::string("is ") + (unix_socket ? "a unix socket" : "not an IP socket") +
           "; execflow serves TCP: ListenStream=[ADDRESS:]PORT";
  }
  if (sd_is_socket_inet(fd, 0, SOCK_STREAM, -1, 0) <= 0) {
    return "is not a TCP socket (ListenDatagram=?); use ListenStream=";
  }
  if (sd_is_socket_inet(fd, 0, SOCK_STREAM, 1, 0) <= 0) {
    return "is a connection, not a listening socket: the socket unit needs Accept=no";
  }
  // A build without IPv6 keeps addresses in 16 bytes: an IPv6 peer's would not fit.
  if (sd_is_socket_inet(fd, AF_INET, SOCK_STREAM, 1, 0) <= 0 && !CivetwebHasIpv6()) {
    return "listens on " + SocketAddress(fd) + ", IPv6, and this build of civetweb has no IPv6 " +
           "(Debian 12's is built without it): use an IPv4 address (ListenStream=0.0.0.0:PORT)";
  }
  return "";
}

}  // namespace

Result<std::vector<UniqueFd>> SystemdSockets() {
  auto fail = [](const std::string& why) { return Fail("--web.systemd-socket: " + why); };
  // Kept for the messages: sd_listen_fds(1) takes them out of the environment.
  const auto pid = Env("LISTEN_PID");
  const auto count = Env("LISTEN_FDS");
  const int n = sd_listen_fds(1);
  if (n == 0 && !count) {
    return fail("systemd passed no sockets (LISTEN_FDS is not set): start execflow through a socket "
                "unit (deploy/systemd/execflow.socket)");
  }
  if (n == 0 && !pid) return fail("systemd passed no sockets (LISTEN_PID is not set)");
  if (n == 0) {
    return fail("systemd passed no sockets to this process: LISTEN_PID is " + *pid + ", this is " +
                std::to_string(getpid()));
  }
  if (n == -EBADF) {  // at the first descriptor it could not make close-on-exec
    int fd = SD_LISTEN_FDS_START;
    while (fcntl(fd, F_GETFD) >= 0) ++fd;
    return fail("LISTEN_FDS is " + count.value_or("") + ", but descriptor " + std::to_string(fd) +
                " is not open");
  }
  // systemd writes LISTEN_PID as plain digits: any other spelling is what was refused.
  if (n == -EINVAL && pid != std::to_string(getpid())) {
    return fail("LISTEN_PID " + Shown(pid.value_or("")) + ": not a process id");
  }
  if (n == -EINVAL && count == "0") return fail("systemd passed no sockets (LISTEN_FDS=0)");
  if (n == -EINVAL) return fail("LISTEN_FDS " + Shown(count.value_or("")) + ": not a number of sockets");
  if (n < 0) return Fail("--web.systemd-socket: sd_listen_fds", -n);
  std::vector<UniqueFd> sockets;
  for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + n; ++fd) {
    sockets.emplace_back(fd);
    if (std::string why = Unusable(fd); !why.empty()) {
      return fail("descriptor " + std::to_string(fd) + " " + why);
    }
  }
  return sockets;
}

std::string SocketAddress(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
  char host[INET6_ADDRSTRLEN] = "";
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
    return std::string(host) + ":" + std::to_string(ntohs(a->sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
    return "[" + std::string(host) + "]:" + std::to_string(ntohs(a->sin6_port));
  }
  return "?";
}

}  // namespace execflow
