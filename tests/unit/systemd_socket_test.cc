#include "exporter/http/systemd_socket.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/un.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "exporter/http/server.h"
#include "tests/unit/http_client.h"

namespace execflow {
namespace {

// Puts sockets on descriptors 3, 4, ... as systemd does, with LISTEN_PID and
// LISTEN_FDS set, and puts back whatever the process had there afterwards.
class SystemdSocketsTest : public ::testing::Test {
 protected:
  void TearDown() override {
    for (auto [fd, saved] : saved_) {
      if (saved >= 0) {
        dup2(saved, fd);
        close(saved);
      } else {
        close(fd);
      }
    }
    for (const char* v : {"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"}) unsetenv(v);
  }
  // Moves fd to descriptor 3 + i; -1 leaves that descriptor closed.
  void Pass(std::vector<int> fds, const std::string& count = "") {
    for (int& fd : fds) {  // out of the way first: one may be 3 already
      if (fd < 0) continue;
      const int high = fcntl(fd, F_DUPFD_CLOEXEC, 200);
      close(fd);
      fd = high;
    }
    for (size_t i = 0; i < fds.size(); ++i) {
      const int target = 3 + static_cast<int>(i);
      saved_.push_back({target, fcntl(target, F_DUPFD_CLOEXEC, 100)});
      if (fds[i] >= 0) {
        ASSERT_EQ(dup2(fds[i], target), target);
        close(fds[i]);
      } else {
        close(target);
      }
    }
    setenv("LISTEN_PID", std::to_string(getpid()).c_str(), 1);
    setenv("LISTEN_FDS", count.empty() ? std::to_string(fds.size()).c_str() : count.c_str(), 1);
    setenv("LISTEN_FDNAMES", "execflow.socket", 1);
  }
  std::string Error() {
    auto r = SystemdSockets();
    return r ? "no error" : r.error().message;
  }
  std::vector<std::pair<int, int>> saved_;
};

int Ipv6Listening() {
  int fd = socket(AF_INET6, SOCK_STREAM, 0);
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(fd, 4) != 0) return -1;
  return fd;
}

TEST_F(SystemdSocketsTest, TakesListeningTcpSocketsFromDescriptorThree) {
  int a = ListeningSocket(), b = ListeningSocket();
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  const int pa = LocalPort(a), pb = LocalPort(b);
  Pass({a, b});  // as systemd passes them: without close-on-exec
  auto r = SystemdSockets();
  ASSERT_TRUE(r.has_value()) << r.error().message;
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].get(), 3);
  EXPECT_EQ((*r)[1].get(), 4);
  EXPECT_EQ(SocketAddress(3), "127.0.0.1:" + std::to_string(pa));
  EXPECT_EQ(SocketAddress(4), "127.0.0.1:" + std::to_string(pb));
  for (int fd : {3, 4}) EXPECT_EQ(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC) << fd;
  // Not passed on to anything this process runs.
  EXPECT_EQ(std::getenv("LISTEN_PID"), nullptr);
  EXPECT_EQ(std::getenv("LISTEN_FDS"), nullptr);
  EXPECT_EQ(std::getenv("LISTEN_FDNAMES"), nullptr);
}

TEST_F(SystemdSocketsTest, Ipv6OnlyWhereCivetwebHasIt) {
  int v6 = Ipv6Listening();
  ASSERT_GE(v6, 0);
  const std::string where = "[::1]:" + std::to_string(LocalPort(v6));
  Pass({v6});
  auto r = SystemdSockets();
  if (CivetwebHasIpv6()) {
    ASSERT_TRUE(r.has_value()) << r.error().message;
    EXPECT_EQ(SocketAddress(3), where);
  } else {  // Debian 12's civetweb
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().message, "--web.systemd-socket: descriptor 3 listens on " + where +
                                     ", IPv6, and this build of civetweb has no IPv6 (Debian 12's "
                                     "is built without it): use an IPv4 address "
                                     "(ListenStream=0.0.0.0:PORT)");
  }
}

TEST_F(SystemdSocketsTest, NoneForThisProcess) {
  EXPECT_EQ(Error(),
            "--web.systemd-socket: systemd passed no sockets (LISTEN_FDS is not set): start execflow "
            "through a socket unit (deploy/systemd/execflow.socket)");
  Pass({ListeningSocket()});
  setenv("LISTEN_PID", "1", 1);
  EXPECT_EQ(Error(), "--web.systemd-socket: systemd passed no sockets to this process: LISTEN_PID is 1, "
                     "this is " + std::to_string(getpid()));
  setenv("LISTEN_PID", std::to_string(getpid()).c_str(), 1);
  setenv("LISTEN_FDS", "0", 1);
  EXPECT_EQ(Error(), "--web.systemd-socket: systemd passed no sockets (LISTEN_FDS=0)");
  setenv("LISTEN_PID", std::to_string(getpid()).c_str(), 1);
  setenv("LISTEN_FDS", "two", 1);
  EXPECT_EQ(Error(), "--web.systemd-socket: LISTEN_FDS 'two': not a number of sockets");
  setenv("LISTEN_PID", "self", 1);
  setenv("LISTEN_FDS", "1", 1);
  EXPECT_EQ(Error(), "--web.systemd-socket: LISTEN_PID 'self': not a process id");
  setenv("LISTEN_FDS", "1", 1);
  EXPECT_EQ(Error(), "--web.systemd-socket: systemd passed no sockets (LISTEN_PID is not set)");
}

TEST_F(SystemdSocketsTest, FewerDescriptorsThanLISTEN_FDS) {
  Pass({ListeningSocket(), -1});
  EXPECT_EQ(Error(), "--web.systemd-socket: LISTEN_FDS is 2, but descriptor 4 is not open");
}

TEST_F(SystemdSocketsTest, NotATcpListener) {
  Pass({open("/dev/null", O_RDONLY)});
  EXPECT_EQ(Error(), "--web.systemd-socket: descriptor 3 is not a socket");
}

TEST_F(SystemdSocketsTest, UnixSocket) {
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;  // autobind: an abstract name
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(sa_family_t)), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  Pass({fd});
  EXPECT_EQ(Error(), "--web.systemd-socket: descriptor 3 is a unix socket; execflow serves TCP: "
                     "ListenStream=[ADDRESS:]PORT");
}

TEST_F(SystemdSocketsTest, DatagramSocket) {
  Pass({socket(AF_INET, SOCK_DGRAM, 0)});
  EXPECT_EQ(Error(), "--web.systemd-socket: descriptor 3 is not a TCP socket (ListenDatagram=?); "
                     "use ListenStream=");
}

TEST_F(SystemdSocketsTest, ConnectionFromAcceptYes) {
  int l = ListeningSocket();
  int c = ConnectLoopback(LocalPort(l));
  ASSERT_GE(c, 0);
  int accepted = accept(l, nullptr, nullptr);
  ASSERT_GE(accepted, 0);
  close(l);
  Pass({accepted});
  EXPECT_EQ(Error(), "--web.systemd-socket: descriptor 3 is a connection, not a listening socket: "
                     "the socket unit needs Accept=no");
  close(c);
}

}  // namespace
}  // namespace execflow
