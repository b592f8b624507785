#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace execflow {

// A TCP listener on loopback (IPv4 or IPv6) that drains every connection
// and counts what it received.
class SinkServer {
 public:
  explicit SinkServer(int family = AF_INET, const char* addr = nullptr, uint16_t port = 0)
      : family_(family) {
    fd_ = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_storage ss{};
    socklen_t len = Fill(&ss, addr ? addr : (family == AF_INET ? "127.0.0.1" : "::1"), port);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0 || listen(fd_, 1024) != 0) {
      fd_ = -1;
      return;
    }
    getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len);
    port_ = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                    : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~SinkServer() {
    stop_ = true;
    shutdown(fd_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    for (auto& t : readers_) t.join();
    close(fd_);
  }
  bool ok() const { return fd_ >= 0; }
  uint16_t port() const { return port_; }
  uint64_t received() const { return received_; }
  // Connections whose EOF it read and that it closed.
  int closed() const { return closed_; }

  static socklen_t Fill(sockaddr_storage* ss, const char* addr, uint16_t port) {
    if (std::strchr(addr, ':')) {
      auto* a = reinterpret_cast<sockaddr_in6*>(ss);
      a->sin6_family = AF_INET6;
      a->sin6_port = htons(port);
      inet_pton(AF_INET6, addr, &a->sin6_addr);
      return sizeof(*a);
    }
    auto* a = reinterpret_cast<sockaddr_in*>(ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    inet_pton(AF_INET, addr, &a->sin_addr);
    return sizeof(*a);
  }

 private:
  void Serve() {
    for (;;) {
      int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) {
        if (stop_) return;
        continue;
      }
      readers_.emplace_back([this, c] {
        char buf[65536];
        for (ssize_t n; (n = read(c, buf, sizeof(buf))) > 0;) received_ += n;
        close(c);
        ++closed_;
      });
    }
  }

  int family_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> received_{0};
  std::atomic<int> closed_{0};
  std::thread thread_;
  std::vector<std::thread> readers_;
};

// A connected client socket; -1 on failure. *sport gets its local port.
inline int Connect(const char* addr, uint16_t port, uint16_t* sport = nullptr) {
  sockaddr_storage ss{};
  socklen_t len = SinkServer::Fill(&ss, addr, port);
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    close(fd);
    return -1;
  }
  if (sport) {
    sockaddr_storage me{};
    socklen_t ml = sizeof(me);
    getsockname(fd, reinterpret_cast<sockaddr*>(&me), &ml);
    *sport = ntohs(me.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&me)->sin_port
                                           : reinterpret_cast<sockaddr_in6*>(&me)->sin6_port);
  }
  return fd;
}

// Writes `total` bytes in writes of cycling sizes; false on a short or failed write.
inline bool SendVarying(int fd, uint64_t total) {
  static const size_t kSizes[] = {1, 7, 100, 1448, 4096, 65536, 3, 200000, 12345};
  std::vector<char> buf(200000, 'x');
  uint64_t sent = 0;
  for (size_t i = 0; sent < total; ++i) {
    size_t n = std::min<uint64_t>(kSizes[i % std::size(kSizes)], total - sent);
    size_t done = 0;
    while (done < n) {
      ssize_t w = write(fd, buf.data() + done, n - done);
      if (w <= 0) return false;
      done += w;
    }
    sent += n;
  }
  return true;
}

// A blocking send into a peer that never reads; while the sender sleeps for
// buffer space, the peer resets the connection (close with SO_LINGER 0), so
// the send returns after its socket reached TCP_CLOSE. Returns what that send
// accepted (> 0 on success), and the connection's ports.
inline ssize_t SendInterruptedByReset(uint16_t* sport, uint16_t* dport) {
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_storage ss{};
  socklen_t len = SinkServer::Fill(&ss, "127.0.0.1", 0);
  if (bind(lfd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || listen(lfd, 1) != 0) return -1;
  getsockname(lfd, reinterpret_cast<sockaddr*>(&ss), &len);
  *dport = ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  int fd = Connect("127.0.0.1", *dport, sport);
  int peer = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
  close(lfd);
  if (fd < 0 || peer < 0) return -1;
  std::atomic<ssize_t> sent{-1};
  std::thread sender([&] {
    std::vector<char> big(64 << 20, 'r');  // far more than both socket buffers hold
    sent = send(fd, big.data(), big.size(), 0);
  });
  // Once the sender sleeps waiting for space, its queue stops growing.
  int last = -1, queued = 0;
  for (int i = 0; i < 400 && (queued != last || queued == 0); ++i) {
    last = queued;
    usleep(50000);
    ioctl(fd, TIOCOUTQ, &queued);
  }
  linger lg{1, 0};
  setsockopt(peer, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  close(peer);
  sender.join();
  close(fd);
  return sent;
}

// Sends `bytes` through a raw IPPROTO_TCP socket connected to daddr: not a
// TCP flow (the stack drops the bogus segment). Returns what send returned.
inline ssize_t SendRawTcp(const char* daddr, size_t bytes) {
  int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_TCP);
  if (fd < 0) return -1;
  sockaddr_storage ss{};
  socklen_t len = SinkServer::Fill(&ss, daddr, 0);
  ssize_t n = -1;
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0) {
    std::vector<char> seg(bytes, 0);
    n = send(fd, seg.data(), seg.size(), 0);
  }
  close(fd);
  return n;
}

}  // namespace execflow
