#include "exporter/http/systemd_socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "exporter/common/shown.h"
#include "exporter/http/server.h"

namespace execflow {
namespace {

constexpr int kFirstFd = 3;  // SD_LISTEN_FDS_START
constexpr const char* kWhat = "--web.systemd-socket: ";

// getenv()'s pointer dies with unsetenv(): copied first.
std::optional<std::string> Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::optional<std::string>(v) : std::nullopt;
}

std::optional<long> Number(const std::string& s) {
  long n = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || p != s.data() + s.size() || n < 0) return std::nullopt;
  return n;
}

// Why a descriptor systemd passed cannot be served; empty when it can.
std::string Unusable(int fd) {
  int domain = 0, type = 0, listening = 0;
  socklen_t len = sizeof(domain);
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0) {
    if (errno == ENOTSOCK) return "is not a socket";
    return std::string("cannot be read: ") + std::strerror(errno);
  }
  len = sizeof(type);
  getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len);
  len = sizeof(listening);
  getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len);
  if (domain != AF_INET && domain != AF_INET6) {
    return std::string("is ") + (domain == AF_UNIX ? "a unix socket" : "not an IP socket") +
           "; execflow serves TCP: ListenStream=[ADDRESS:]PORT";
  }
  if (type != SOCK_STREAM) return "is not a TCP socket (ListenDatagram=?); use ListenStream=";
  if (!listening) return "is a connection, not a listening socket: the socket unit needs Accept=no";
  // A build without IPv6 keeps addresses in 16 bytes: an IPv6 peer's would not fit.
  if (domain == AF_INET6 && !CivetwebHasIpv6()) {
    return "listens on " + SocketAddress(fd) + ", IPv6, and this build of civetweb has no IPv6 " +
           "(Debian 12's is built without it): use an IPv4 address (ListenStream=0.0.0.0:PORT)";
  }
  return "";
}

}  // namespace

Result<std::vector<UniqueFd>> SystemdSockets() {
  const auto pid = Env("LISTEN_PID");
  const auto count = Env("LISTEN_FDS");
  // Not for children: whatever this process runs is not the service.
  unsetenv("LISTEN_PID");
  unsetenv("LISTEN_FDS");
  unsetenv("LISTEN_FDNAMES");
  const std::string none = std::string(kWhat) + "systemd passed no sockets";
  if (!count) {
    return Fail(none + " (LISTEN_FDS is not set): start execflow through a socket unit "
                "(deploy/systemd/execflow.socket)");
  }
  if (!pid) return Fail(none + " (LISTEN_PID is not set)");
  const auto pid_n = Number(*pid);
  if (!pid_n) return Fail(std::string(kWhat) + "LISTEN_PID " + Shown(*pid) + ": not a process id");
  if (*pid_n != getpid()) {
    return Fail(none + " to this process: LISTEN_PID is " + *pid + ", this is " +
                std::to_string(getpid()));
  }
  const auto n = Number(*count);
  if (!n || *n > INT_MAX - kFirstFd) {
    return Fail(std::string(kWhat) + "LISTEN_FDS " + Shown(*count) + ": not a number of sockets");
  }
  if (*n == 0) return Fail(none + " (LISTEN_FDS=0)");
  std::vector<UniqueFd> sockets;
  for (int fd = kFirstFd; fd < kFirstFd + *n; ++fd) {
    const int flags = fcntl(fd, F_GETFD);
    if (flags < 0) {
      return Fail(std::string(kWhat) + "LISTEN_FDS is " + *count + ", but descriptor " +
                  std::to_string(fd) + " is not open");
    }
    sockets.emplace_back(fd);
    fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
    if (std::string why = Unusable(fd); !why.empty()) {
      return Fail(std::string(kWhat) + "descriptor " + std::to_string(fd) + " " + why);
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
