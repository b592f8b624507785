#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "tests/wait_for.h"

namespace execflow {

struct HttpReply {
  int status = 0;
  std::string headers;
  std::string body;
};

// A connection to 127.0.0.1:port; `from` is the client's address (any of
// 127/8, which is all loopback), or null for the kernel's choice.
inline int ConnectLoopback(int port, const char* from = nullptr) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (from) {
    sockaddr_in local{};
    local.sin_family = AF_INET;
    if (inet_pton(AF_INET, from, &local.sin_addr) != 1 ||
        bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0) {
      close(fd);
      return -1;
    }
  }
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

inline bool SendAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

inline HttpReply ParseReply(const std::string& resp) {
  HttpReply reply;
  auto sp = resp.find(' ');
  if (sp != std::string::npos && resp.size() >= sp + 4) reply.status = std::stoi(resp.substr(sp + 1, 3));
  auto end = resp.find("\r\n\r\n");
  if (end != std::string::npos) {
    reply.headers = resp.substr(0, end);
    reply.body = resp.substr(end + 4);
  }
  return reply;
}

// Whatever the server sends until it closes or `timeout` passes.
inline std::string ReadAll(int fd, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  std::string resp;
  char buf[65536];
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    resp.append(buf, static_cast<size_t>(n));
  }
  return resp;
}

// One HTTP/1.0 request on a new connection (from `from`, see ConnectLoopback),
// read until the server closes.
inline HttpReply HttpRequest(int port, const std::string& path, const std::string& method = "GET",
                             const std::string& header = "", const char* from = nullptr) {
  int fd = ConnectLoopback(port, from);
  if (fd < 0) return {};
  std::string req = method + " " + path + " HTTP/1.0\r\nHost: localhost\r\n" +
                    (header.empty() ? "" : header + "\r\n") + "\r\n";
  HttpReply reply;
  if (SendAll(fd, req)) reply = ParseReply(ReadAll(fd));
  close(fd);
  return reply;
}

// A socket as systemd passes one: bound to 127.0.0.1 (port 0: the kernel
// picks) and listening before the server starts.
inline int ListeningSocket() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(fd, 16) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

inline int LocalPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return -1;
  return ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                        : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
}

}  // namespace execflow
