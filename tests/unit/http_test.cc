#include "exporter/http/server.h"

#include <crypt.h>
#include <csignal>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <thread>
#include <vector>

#include "exporter/metrics/families.h"
#include "tests/unit/http_client.h"
#include "tests/unit/scratch_dir.h"

namespace execflow {
namespace {

using namespace std::chrono_literals;

// How long a test waits for something that happens at once before it calls
// it a hang: a bound, never the expected time.
constexpr auto kHang = 30s;

class StaticMetrics : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override {
    auto f = Counter("execflow_execs_total", "Successful execs.");
    AddCounter(f, {{"uid", "1000"}}, 200);
    return {f};
  }
};

std::map<std::string, HttpHandler> TestRoutes() {
  std::map<std::string, HttpHandler> routes;
  routes["/healthz"] = [](std::string_view) { return HttpResponse{200, "text/plain", "ok\n"}; };
  routes["/readyz"] = [](std::string_view) { return HttpResponse{503, "text/plain", "not yet\n"}; };
  routes["/echo"] = [](std::string_view q) { return HttpResponse{200, "text/plain", std::string(q)}; };
  return routes;
}

std::unique_ptr<HttpServer> StartServer(std::shared_ptr<StaticMetrics> m, HttpOptions o = {}) {
  o.listen_addresses = {"127.0.0.1:0"};
  auto s = HttpServer::Start(o, m, TestRoutes());
  EXPECT_TRUE(s.has_value()) << s.error().message;
  return s ? std::move(*s) : nullptr;
}

std::string Bcrypt(const char* password) {
  char salt[64];
  crypt_gensalt_rn("$2b$", 4, nullptr, 0, salt, sizeof(salt));
  crypt_data d{};
  return crypt_r(password, salt, &d);
}

// Everything the server sends on `fd` until it closes (EOF or reset); false
// if it has not closed after `hang` (a bound on a hang, never the expected time).
bool ReadToEof(int fd, std::string* out, std::chrono::milliseconds hang = kHang) {
  const auto deadline = std::chrono::steady_clock::now() + hang;
  char buf[4096];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return true;
    out->append(buf, static_cast<size_t>(n));
  }
}

// True if the server closes the connection before `timeout`; what it sends before is dropped.
bool ClosedWithin(int fd, std::chrono::milliseconds timeout) {
  std::string ignored;
  return ReadToEof(fd, &ignored, timeout);
}

// Reads one response with a Content-Length from a kept-alive connection.
HttpReply ReadOne(int fd) {
  std::string got;
  char buf[4096];
  for (;;) {
    auto end = got.find("\r\n\r\n");
    if (end != std::string::npos) {
      auto cl = got.find("Content-Length: ");
      if (cl == std::string::npos || cl > end) return ParseReply(got);
      const size_t len = std::stoul(got.substr(cl + 16));
      if (got.size() >= end + 4 + len) return ParseReply(got.substr(0, end + 4 + len));
    }
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(std::chrono::milliseconds(kHang).count())) <= 0) return {};
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) return ParseReply(got);
    got.append(buf, static_cast<size_t>(n));
  }
}

TEST(HttpServer, ServesMetricsAndRoutesOnAnEphemeralPort) {
  auto metrics = std::make_shared<StaticMetrics>();
  auto server = StartServer(metrics);
  ASSERT_NE(server, nullptr);
  ASSERT_GT(server->port(), 0);

  auto m = HttpRequest(server->port(), "/metrics");
  EXPECT_EQ(m.status, 200);
  EXPECT_NE(m.body.find("# TYPE execflow_execs_total counter"), std::string::npos) << m.body;
  EXPECT_NE(m.body.find("execflow_execs_total{uid=\"1000\"} 200"), std::string::npos) << m.body;
  EXPECT_NE(m.body.find("execflow_http_auth_failures_total{reason=\"denied\"} 0"), std::string::npos);

  auto h = HttpRequest(server->port(), "/healthz");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.body, "ok\n");
  EXPECT_NE(h.headers.find("Content-Length: 3"), std::string::npos);
  EXPECT_EQ(HttpRequest(server->port(), "/readyz").status, 503);
  EXPECT_EQ(HttpRequest(server->port(), "/nope").status, 404);
  EXPECT_EQ(HttpRequest(server->port(), "/metrics/x").status, 404);
}

TEST(HttpServer, HeadWhereverGetWorksAndMethodsAreAnswered) {
  HttpOptions o;
  o.read_timeout_seconds = 3600;  // a server that waited for the body would wait this long
  auto server = StartServer(std::make_shared<StaticMetrics>(), std::move(o));
  ASSERT_NE(server, nullptr);
  const int port = server->port();
  for (const char* path : {"/metrics", "/healthz", "/echo"}) {
    auto head = HttpRequest(port, path, "HEAD");
    EXPECT_EQ(head.status, 200) << path;
    EXPECT_EQ(head.body, "") << path;
    EXPECT_NE(head.headers.find("Content-Type: text/plain"), std::string::npos) << path;
  }
  for (const char* method : {"POST", "PUT", "DELETE", "PATCH"}) {
    for (const char* path : {"/metrics", "/healthz"}) {
      auto r = HttpRequest(port, path, method);
      EXPECT_EQ(r.status, 405) << method << " " << path;
      EXPECT_NE(r.headers.find("Allow: GET, HEAD, OPTIONS"), std::string::npos) << r.headers;
    }
  }
  auto options = HttpRequest(port, "/metrics", "OPTIONS");
  EXPECT_EQ(options.status, 204);
  EXPECT_NE(options.headers.find("Allow: GET, HEAD, OPTIONS"), std::string::npos);
  auto star = HttpRequest(port, "*", "OPTIONS");
  EXPECT_EQ(star.status, 204);
  EXPECT_NE(star.headers.find("Allow: GET, HEAD, OPTIONS"), std::string::npos);
  EXPECT_EQ(HttpRequest(port, "*", "GET").status, 400);
  EXPECT_EQ(HttpRequest(port, "/nope", "OPTIONS").status, 404);
  // A body is never read: the server answers and closes rather than wait for
  // a body the client may trickle for hours (any method: the body is refused
  // before the method is looked at).
  for (const char* method : {"POST", "GET"}) {
    int fd = ConnectLoopback(port);
    ASSERT_TRUE(SendAll(fd, std::string(method) +
                                " /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nabc"));
    auto r = ReadOne(fd);
    EXPECT_EQ(r.status, 400) << method;
    EXPECT_EQ(r.body, "no endpoint takes a request body\n") << method;
    EXPECT_NE(r.headers.find("Connection: close"), std::string::npos) << r.headers;
    EXPECT_TRUE(ClosedWithin(fd, kHang)) << method;
    close(fd);
  }
}

// How many responses a byte stream holds: status lines at the start of the
// stream or right after a previous response's Content-Length bytes.
int CountResponses(const std::string& stream) {
  int n = 0;
  size_t at = 0;
  while (at < stream.size() && stream.compare(at, 5, "HTTP/") == 0) {
    ++n;
    const auto end = stream.find("\r\n\r\n", at);
    if (end == std::string::npos) break;
    const auto cl = stream.find("Content-Length: ", at);
    const size_t len = cl != std::string::npos && cl < end ? std::stoul(stream.substr(cl + 16)) : 0;
    at = end + 4 + len;
  }
  return n;
}

// A body (any Content-Length or Transfer-Encoding) is where a second request
// hides: civetweb reads the first of two Content-Lengths and the number that
// starts "0, 44" or "0x", a proxy in front of it may read the other. Every
// request with one gets one 400 and the connection is closed: what follows
// is never read as a request.
TEST(HttpServer, ARequestWithABodyIsRefusedAndNothingAfterItIsServed) {
  auto server = StartServer(std::make_shared<StaticMetrics>());
  ASSERT_NE(server, nullptr);
  const std::string smuggled = "GET /echo?smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string n = std::to_string(smuggled.size());
  const std::vector<std::string> framings = {
      "Content-Length: 0\r\nContent-Length: " + n,
      "Content-Length: " + n + "\r\nContent-Length: 0",
      "Content-Length: 5\r\nContent-Length: 7",
      "Content-Length: 0, " + n,
      "Content-Length: 5, 7",
      "Content-Length: 0x",
      "Content-Length: 5x",
      "Content-Length: 0",
      "content-length: 0",
      "Content-Length : 0",
      "Content-Length: abc",
      "Content-Length: -1",
      "Transfer-Encoding: chunked",
      "Transfer-Encoding: identity\r\nContent-Length: 0",
      "Transfer-Encoding: gzip",
  };
  for (const std::string& framing : framings) {
    for (const char* path : {"/healthz", "/metrics", "/nope"}) {
      int fd = ConnectLoopback(server->port());
      ASSERT_GE(fd, 0);
      const std::string body = framing.find("chunked") != std::string::npos ? "0\r\n\r\n" : "";
      ASSERT_TRUE(SendAll(fd, std::string("GET ") + path + " HTTP/1.1\r\nHost: x\r\n" + framing +
                                  "\r\n\r\n" + body + smuggled));
      std::string got;
      EXPECT_TRUE(ReadToEof(fd, &got)) << framing << " " << path;
      close(fd);
      EXPECT_EQ(CountResponses(got), 1) << framing << " " << path << "\n" << got;
      EXPECT_EQ(got.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u) << framing << " " << path << "\n" << got;
      EXPECT_NE(got.find("Connection: close\r\n"), std::string::npos) << framing << "\n" << got;
      EXPECT_EQ(got.find("smuggled"), std::string::npos) << framing << "\n" << got;
    }
  }
}

// civetweb's own error page starts its status line with "HTTP/" and whatever
// the client sent as its version, and quotes it in the body.
TEST(HttpServer, AMalformedRequestGetsAFixedAnswerWithNothingOfTheRequest) {
  auto server = StartServer(std::make_shared<StaticMetrics>());
  ASSERT_NE(server, nullptr);
  auto fixed = [](const std::string& status, const std::string& body) {
    return "HTTP/1.1 " + status + "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n" + body;
  };
  const std::string bad = fixed("400 Bad Request", "bad request\n");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"GET /healthz HTTP/<script>alert(1)</script>\r\nHost: x\r\n\r\n", bad},
      {"GET /healthz HTTP/1.1<x>\r\n\r\n", bad},
      {"GET /healthz EVIL/1.1\r\n\r\n", bad},
      {"BREW /healthz HTTP/evil\r\n\r\n", bad},
      {"GET /healthz HTTP/1.1 evil\r\n\r\n", bad},
      {"GET /healthz HTTP/1.1\r\nBad Header\r\n\r\n", bad},
      {"GET /healthz HTTP/1.1\r\nHost: x\x01evil\r\n\r\n", bad},
      {"GET /healthz HTTP/2.0\r\n\r\n", fixed("505 HTTP Version Not Supported", "HTTP/1.0 and HTTP/1.1 only\n")},
      {"GET /healthz HTTP/1.1\r\nX: " + std::string(9000, 'a') + "\r\n\r\n", bad},  // over 8 KiB
  };
  for (const auto& [request, answer] : cases) {
    int fd = ConnectLoopback(server->port());
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(SendAll(fd, request));
    std::string got;
    EXPECT_TRUE(ReadToEof(fd, &got)) << request.substr(0, 80);
    close(fd);
    EXPECT_EQ(got, answer) << request.substr(0, 80);
  }
  // Parsed by civetweb, refused by the server's own checks: a 400 in the
  // request's own (checked) version, nothing of the request in it.
  for (const std::string header : {"Ho\"st: <x>", "X<evil>: 1", "{}: 1"}) {
    int fd = ConnectLoopback(server->port());
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(SendAll(fd, "GET /healthz HTTP/1.1\r\n" + header + "\r\n\r\n"));
    std::string got;
    EXPECT_TRUE(ReadToEof(fd, &got)) << header;
    close(fd);
    EXPECT_EQ(got.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u) << header << "\n" << got;
    EXPECT_EQ(CountResponses(got), 1) << got;
    EXPECT_EQ(got.find_first_of("<>{}"), std::string::npos) << header << "\n" << got;
  }
}

TEST(HttpServer, QueryIsPassedAsSent) {
  auto server = StartServer(std::make_shared<StaticMetrics>());
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(HttpRequest(server->port(), "/echo?a=1&limit=3").body, "a=1&limit=3");
}

TEST(HttpServer, KeepAliveAnswersEveryRequestOnTheConnection) {
  auto server = StartServer(std::make_shared<StaticMetrics>());
  ASSERT_NE(server, nullptr);
  int fd = ConnectLoopback(server->port());
  ASSERT_GE(fd, 0);
  for (const char* path : {"/healthz", "/metrics", "/echo?x", "/metrics"}) {
    ASSERT_TRUE(SendAll(fd, std::string("GET ") + path + " HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto r = ReadOne(fd);
    EXPECT_EQ(r.status, 200) << path;
    EXPECT_FALSE(r.body.empty()) << path;
    // prometheus-cpp writes no Connection header: HTTP/1.1's default, keep-alive.
    if (std::string(path) != "/metrics") {
      EXPECT_NE(r.headers.find("Connection: keep-alive"), std::string::npos) << r.headers;
    }
  }
  ASSERT_TRUE(SendAll(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  auto last = ReadOne(fd);
  EXPECT_EQ(last.status, 200);
  EXPECT_NE(last.headers.find("Connection: close"), std::string::npos) << last.headers;
  EXPECT_TRUE(ClosedWithin(fd, kHang));
  close(fd);
}

TEST(HttpServer, IdleAndSlowConnectionsAreClosedAfterTheirTimeouts) {
  HttpOptions o;
  o.read_timeout_seconds = 0.5;
  o.idle_timeout_seconds = 0.5;
  auto server = StartServer(std::make_shared<StaticMetrics>(), std::move(o));
  ASSERT_NE(server, nullptr);
  // Sends half a request line, then nothing.
  int slow = ConnectLoopback(server->port());
  ASSERT_TRUE(SendAll(slow, "GET /heal"));
  // Kept alive after one request, then idle.
  int idle = ConnectLoopback(server->port());
  ASSERT_TRUE(SendAll(idle, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(ReadOne(idle).status, 200);
  // Connected, never sends.
  int silent = ConnectLoopback(server->port());
  for (int fd : {slow, idle, silent}) {
    EXPECT_TRUE(ClosedWithin(fd, kHang));
    close(fd);
  }
}

// A wake signal that lands while the worker is between two waits is lost: a
// closing connection is signalled again until its worker says it has ended,
// without waiting for another connection to come (none may, if every worker
// holds such a connection: the hang CI's Tls.ClientsThatNeverFinishTheHandshake...
// ran into).
TEST(WaitingConnections, AClosingConnectionIsSignalledAgainUntilItEnds) {
  std::mutex mu;
  std::vector<pthread_t> closed;
  WaitingConnections w(1, [&](pthread_t worker) {
    std::lock_guard lock(mu);
    closed.push_back(worker);
  });
  std::thread retry([&] { w.RetryUntilStopped(std::chrono::milliseconds(1)); });
  auto signals = [&] {
    std::lock_guard lock(mu);
    return closed.size();
  };
  const auto t0 = std::chrono::steady_clock::now();
  w.Accepted(1, t0);
  w.Accepted(2, t0 + 1s);  // 1 closes: one signal now
  EXPECT_TRUE(WaitFor([&] { return signals() >= 3; })) << signals();  // and again, with no new connection
  w.Closed(1);
  const size_t after_close = signals();
  w.Accepted(3, t0 + 2s);  // 2 closes
  EXPECT_TRUE(WaitFor([&] { return signals() >= after_close + 3; })) << signals();
  w.Stop();
  retry.join();
  std::lock_guard lock(mu);
  // Once 1 ended it was never signalled again: every later signal went to 2.
  for (size_t i = after_close; i < closed.size(); ++i) EXPECT_EQ(closed[i], pthread_t{2}) << i;
}

TEST(WaitingConnections, ClosesTheOneWaitingLongestBeyondItsLimit) {
  std::vector<pthread_t> closed;
  WaitingConnections w(2, [&](pthread_t worker) { closed.push_back(worker); });
  const auto t0 = std::chrono::steady_clock::now();
  w.Accepted(1, t0);
  w.Accepted(2, t0 + 1s);
  EXPECT_EQ(w.waiting(), 2u);
  EXPECT_EQ(closed, std::vector<pthread_t>{});
  w.Accepted(3, t0 + 2s);
  EXPECT_EQ(closed, std::vector<pthread_t>{1});
  EXPECT_EQ(w.waiting(), 2u);
  EXPECT_EQ(w.closed(), 1u);
  // 1 is interrupted again at each later wait until its connection ends.
  w.Serving(2);
  EXPECT_EQ(w.waiting(), 1u);
  w.Accepted(4, t0 + 3s);
  EXPECT_EQ(closed, (std::vector<pthread_t>{1, 1}));
  w.Closed(1);
  // Back from serving, 2 waits from now: 3 has waited longest.
  w.Waiting(2, t0 + 4s);
  EXPECT_EQ(closed, (std::vector<pthread_t>{1, 1, 3}));
  EXPECT_EQ(w.waiting(), 2u);
  // A worker already waiting (a TLS handshake, then civetweb's first read)
  // keeps the time it started.
  w.Closed(3);
  w.Accepted(4, t0 + 10s);
  w.Accepted(5, t0 + 5s);
  EXPECT_EQ(closed, (std::vector<pthread_t>{1, 1, 3, 4}));
  EXPECT_EQ(w.closed(), 3u);
  // Serving or waiting again does not bring a closing connection back.
  w.Serving(4);
  w.Waiting(4, t0 + 6s);
  EXPECT_EQ(w.waiting(), 2u);
  w.Closed(4);
  w.Closed(2);
  w.Closed(5);
  EXPECT_EQ(w.waiting(), 0u);

  WaitingConnections unlimited(0, [&](pthread_t worker) { closed.push_back(worker); });
  for (pthread_t worker = 1; worker <= 300; ++worker) unlimited.Accepted(worker, t0);
  EXPECT_EQ(unlimited.waiting(), 300u);
  EXPECT_EQ(unlimited.closed(), 0u);
}

// Clients that send part of a request head and then wait (a byte now and then
// is the same to the server) take a worker each. Beyond 224 of the 256
// workers, the one that waited longest is closed, so probes and scrapes always
// find a worker: the kubelet's 2 s liveness timeout is not run down by them
// (tests/bench/http_bench.py prints how fast they are answered).
TEST(HttpServer, ProbesAndScrapesAreAnsweredWhileMoreSlowClientsThanWorkersWait) {
  HttpOptions o;
  o.listen_addresses = {"127.0.0.1:0"};
  o.read_timeout_seconds = 3600;  // no slow client is dropped by the timeout while the test runs
  auto routes = TestRoutes();
  routes["/readyz"] = [](std::string_view) { return HttpResponse{200, "text/plain", "ready\n"}; };
  auto metrics = std::make_shared<StaticMetrics>();
  auto started = HttpServer::Start(o, metrics, routes);
  ASSERT_TRUE(started.has_value()) << started.error().message;
  auto& server = *started;
  const int port = server->port();
  auto answered = [&] {
    for (const char* probe : {"/healthz", "/readyz"}) EXPECT_EQ(HttpRequest(port, probe).status, 200) << probe;
    auto m = HttpRequest(port, "/metrics");
    EXPECT_EQ(m.status, 200);
    EXPECT_NE(m.body.find("execflow_execs_total{uid=\"1000\"} 200"), std::string::npos);
  };
  std::vector<int> slow;
  auto add_slow = [&](int n) {
    for (int i = 0; i < n; ++i) {
      int fd = ConnectLoopback(port);
      ASSERT_GE(fd, 0);
      ASSERT_TRUE(SendAll(fd, "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: a"));
      slow.push_back(fd);
    }
  };
  auto closed_by_server = [&] {
    int n = 0;
    for (int fd : slow) {
      pollfd p{fd, POLLIN, 0};
      n += poll(&p, 1, 0) == 1;
    }
    return n;
  };
  // Fewer than 224: nothing is closed.
  add_slow(200);
  ASSERT_TRUE(WaitFor([&] { return server->waiting_connections() == 200; })) << server->waiting_connections();
  answered();
  EXPECT_EQ(server->waiting_connections_closed(), 0u);
  // 300: 224 wait, the 76 that waited longest are closed, and the first
  // probe's connection closes one more (the others find 223 waiting).
  add_slow(100);
  ASSERT_TRUE(WaitFor([&] { return server->waiting_connections_closed() == 76; }))
      << server->waiting_connections_closed();
  EXPECT_EQ(server->waiting_connections(), 224u);
  for (int round = 0; round < 3; ++round) answered();
  EXPECT_EQ(server->waiting_connections_closed(), 77u);
  EXPECT_EQ(server->waiting_connections(), 223u);
  EXPECT_TRUE(WaitFor([&] { return closed_by_server() == 77; })) << closed_by_server();
  auto m = HttpRequest(port, "/metrics").body;
  EXPECT_NE(m.find("execflow_http_waiting_connections_closed_total 77\n"), std::string::npos) << m;
  for (int fd : slow) close(fd);
}

TEST(HttpServer, TwoServersKeepTheirOwnRoutes) {
  auto metrics = std::make_shared<StaticMetrics>();
  auto a = StartServer(metrics);
  HttpOptions o;
  o.listen_addresses = {"127.0.0.1:0"};
  auto b = HttpServer::Start(o, metrics, {{"/only-b", [](std::string_view) {
                                             return HttpResponse{200, "text/plain", "b"};
                                           }}});
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(HttpRequest(a->port(), "/only-b").status, 404);
  EXPECT_EQ(HttpRequest((*b)->port(), "/only-b").body, "b");
}

TEST(HttpServer, ServesEveryListenAddress) {
  HttpOptions o;
  o.listen_addresses = {"127.0.0.1:0", "127.0.0.1:0"};
  auto metrics = std::make_shared<StaticMetrics>();  // the server holds it weakly
  auto s = HttpServer::Start(o, metrics, TestRoutes());
  ASSERT_TRUE(s.has_value()) << s.error().message;
  const auto& addresses = (*s)->addresses();
  ASSERT_EQ(addresses.size(), 2u);
  std::vector<int> ports;
  for (const std::string& a : addresses) {
    ASSERT_EQ(a.rfind("127.0.0.1:", 0), 0u) << a;
    ports.push_back(std::stoi(a.substr(10)));
  }
  EXPECT_NE(ports[0], ports[1]);
  EXPECT_EQ((*s)->port(), ports[0]);
  for (int port : ports) {
    auto m = HttpRequest(port, "/metrics");
    EXPECT_EQ(m.status, 200) << port;
    EXPECT_NE(m.body.find("execflow_execs_total{uid=\"1000\"} 200"), std::string::npos) << port;
    EXPECT_EQ(HttpRequest(port, "/healthz").body, "ok\n") << port;
    EXPECT_EQ(HttpRequest(port, "/nope").status, 404) << port;
  }
}

// The socket inodes ("socket:[123]") this process listens on.
std::set<std::string> ListeningSockets() {
  std::set<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    const int fd = std::stoi(e.path().filename());
    int listening = 0;
    socklen_t len = sizeof(listening);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening) {
      std::error_code ec;
      out.insert(std::filesystem::read_symlink(e.path(), ec).string());
    }
  }
  return out;
}

// civetweb's threads of this process ("civetweb-master", "civetweb-worker"),
// and how many of them block SIGURG, the signal that wakes them (/proc's SigBlk).
struct CivetwebThreads {
  int threads = 0;
  int blocking_wake = 0;
};
CivetwebThreads CivetwebThreadsOfThisProcess() {
  CivetwebThreads out;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    std::getline(comm, name);
    if (name != "civetweb-master" && name != "civetweb-worker") continue;
    ++out.threads;
    std::ifstream status(task.path() / "status");
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("SigBlk:", 0) == 0) {
        out.blocking_wake += (std::stoull(line.substr(7), nullptr, 16) >> (SIGURG - 1)) & 1;
      }
    }
  }
  return out;
}

std::string SocketInode(int fd) {
  return std::filesystem::read_symlink("/proc/self/fd/" + std::to_string(fd)).string();
}

// Socket activation: the connection that made systemd start the service
// waits in the socket's queue, so civetweb reads it the moment it starts,
// before Start() has registered the metrics. It must get the metrics, not a
// 404 (the first scrape of a socket-activated service failed so in CI).
TEST(HttpServer, AnswersTheConnectionThatStartedItWithTheMetrics) {
  auto metrics = std::make_shared<StaticMetrics>();
  for (int round = 0; round < 40; ++round) {
    UniqueFd socket(ListeningSocket());
    ASSERT_TRUE(socket);
    int c = ConnectLoopback(LocalPort(socket.get()));
    ASSERT_GE(c, 0);
    ASSERT_TRUE(SendAll(c, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    HttpOptions o;
    o.max_connections = 256;  // the default: civetweb starts that many threads first
    o.systemd_sockets.push_back(std::move(socket));
    auto s = HttpServer::Start(o, metrics, TestRoutes());
    ASSERT_TRUE(s.has_value()) << s.error().message;
    std::string answer;
    EXPECT_TRUE(ReadToEof(c, &answer)) << "round " << round;
    close(c);
    const HttpReply r = ParseReply(answer);
    ASSERT_EQ(r.status, 200) << "round " << round << ": " << answer.substr(0, 200);
    EXPECT_NE(r.body.find("execflow_execs_total{uid=\"1000\"} 200"), std::string::npos) << "round " << round;
  }
}

TEST(HttpServer, ServesSystemdSocketsLikeItsOwnListeners) {
  auto metrics = std::make_shared<StaticMetrics>();
  // What systemd holds: the sockets outlive each server.
  UniqueFd a(ListeningSocket()), b(ListeningSocket());
  ASSERT_TRUE(a && b);
  const int pa = LocalPort(a.get()), pb = LocalPort(b.get());
  const std::set<std::string> systemd = {SocketInode(a.get()), SocketInode(b.get())};
  // civetweb's threads inherit the mask of the thread that starts the server:
  // a daemon may block the signal that wakes them there.
  sigset_t wake, before;
  sigemptyset(&wake);
  sigaddset(&wake, SIGURG);
  pthread_sigmask(SIG_BLOCK, &wake, &before);
  for (int round = 0; round < 3; ++round) {
    HttpOptions o;
    o.max_connections = 4;
    o.systemd_sockets.emplace_back(dup(a.get()));
    o.systemd_sockets.emplace_back(dup(b.get()));
    auto s = HttpServer::Start(o, metrics, TestRoutes());
    ASSERT_TRUE(s.has_value()) << s.error().message;
    EXPECT_EQ((*s)->addresses(), (std::vector<std::string>{"127.0.0.1:" + std::to_string(pa),
                                                           "127.0.0.1:" + std::to_string(pb)}));
    EXPECT_EQ((*s)->port(), pa);
    for (int port : {pa, pb}) {
      auto m = HttpRequest(port, "/metrics");
      EXPECT_EQ(m.status, 200) << port;
      EXPECT_NE(m.body.find("execflow_execs_total{uid=\"1000\"} 200"), std::string::npos) << port;
      EXPECT_EQ(HttpRequest(port, "/healthz").body, "ok\n") << port;
      EXPECT_EQ(HttpRequest(port, "/metrics", "POST").status, 405) << port;
    }
    // civetweb's placeholders are gone: the process listens on systemd's sockets only.
    EXPECT_EQ(ListeningSockets(), systemd);

    // A stop wakes civetweb's master thread from its poll() with a signal
    // (else it would wait for the poll to time out), and closing a waiting
    // connection wakes its worker the same way: no civetweb thread blocks it.
    // Each names itself when it starts: the master and max_connections workers.
    // A thread names itself before it unblocks the signal: wait for both.
    EXPECT_TRUE(WaitFor([] {
      const auto t = CivetwebThreadsOfThisProcess();
      return t.threads == 1 + 4 && t.blocking_wake == 0;
    })) << CivetwebThreadsOfThisProcess().threads << " threads, " << CivetwebThreadsOfThisProcess().blocking_wake
        << " blocking the wake signal, round " << round;
    s->reset();
    // Still listening, with nothing of the server's left in the queues: a
    // connection left there would start the service again.
    for (int fd : {a.get(), b.get()}) {
      int listening = 0;
      socklen_t len = sizeof(listening);
      ASSERT_EQ(getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len), 0);
      EXPECT_EQ(listening, 1);
      pollfd p{fd, POLLIN, 0};
      EXPECT_EQ(poll(&p, 1, 0), 0) << "round " << round;
    }
  }
  pthread_sigmask(SIG_SETMASK, &before, nullptr);
  // A client that comes while no server runs waits in systemd's queue.
  int c = ConnectLoopback(pa);
  ASSERT_GE(c, 0);
  pollfd p{a.get(), POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 1000), 1);
  close(c);
}

TEST(ListenAddress, CheckCanListenSaysWhy) {
  auto a = StartServer(std::make_shared<StaticMetrics>());
  const std::string in_use = "127.0.0.1:" + std::to_string(a->port());
  auto busy = CheckCanListen({in_use});
  ASSERT_FALSE(busy.has_value());
  EXPECT_EQ(busy.error().message, "listen on " + in_use +
                                      ": the port is in use; choose another with --web.listen-address: "
                                      "Address already in use");
  auto foreign = CheckCanListen({"192.0.2.1:9741"});  // TEST-NET-1: no host has it
  ASSERT_FALSE(foreign.has_value());
  EXPECT_EQ(foreign.error().message,
            "listen on 192.0.2.1:9741: no network interface of this host has that address: Cannot "
            "assign requested address");
  EXPECT_TRUE(CheckCanListen({"127.0.0.1:0"}).has_value());
}

// A port no socket uses now; another test's connection may take it as its
// own port at any moment, so checks that need it free are tried again with
// another port when they find it in use.
// The probe listens on IPv4 and IPv6 at once, so the kernel gives a port that
// no socket of either family holds (one on 127.0.0.1 may get a port that a
// socket on [::] holds).
std::string FreePort() {
  UniqueFd probe(socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const int zero = 0;
  setsockopt(probe.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  if (bind(probe.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return "0";
  return std::to_string(LocalPort(probe.get()));
}

// A socket of another process on `host`:`port`, IPv6-only as civetweb opens them.
UniqueFd ForeignListener(const std::string& host, const std::string& port) {
  UniqueFd fd(socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const int one = 1;
  setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(static_cast<uint16_t>(std::stoi(port)));
  inet_pton(AF_INET6, host.c_str(), &a.sin6_addr);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(fd.get(), 1) != 0) {
    return UniqueFd();
  }
  return fd;
}

Result<void> CheckWithFreePort(const std::function<std::vector<std::string>(const std::string&)>& addresses,
                               std::string* port) {
  Result<void> r;
  for (int attempt = 0; attempt < 50; ++attempt) {
    *port = FreePort();
    r = CheckCanListen(addresses(*port));
    if (r || r.error().message.find("the port is in use") == std::string::npos) break;
  }
  return r;
}

TEST(ListenAddress, CheckCanListenHoldsEveryAddressAtOnce) {
  std::string port;
  auto twice = CheckWithFreePort([](const std::string& p) {
    return std::vector<std::string>{"127.0.0.1:" + p, "127.0.0.1:" + p};
  }, &port);
  ASSERT_FALSE(twice.has_value());
  EXPECT_EQ(twice.error().message, "listen on 127.0.0.1:" + port +
                                       ": overlaps --web.listen-address 127.0.0.1:" + port +
                                       " (same port)");
  // Port 0 on IPv6: on 127.0.0.1 the kernel may choose `port` again (it is free), which
  // would make ":port" the overlap.
  auto any = CheckWithFreePort([](const std::string& p) {
    return std::vector<std::string>{"[::1]:0", ":" + p, "127.0.0.1:" + p};
  }, &port);
  ASSERT_FALSE(any.has_value());
  EXPECT_EQ(any.error().message,
            "listen on 127.0.0.1:" + port + ": overlaps --web.listen-address :" + port + " (same port)");
  // IPv4 and IPv6 on one port are two sockets, as civetweb opens them.
  std::string free_port;
  EXPECT_TRUE(CheckWithFreePort([](const std::string& p) { return std::vector<std::string>{":" + p, "[::]:" + p}; },
                                &free_port).has_value());
  EXPECT_TRUE(CheckCanListen({"127.0.0.1:0", "127.0.0.1:0", "[::1]:0"}).has_value());
  // Each address is checked, not only the first.
  auto bad = CheckCanListen({"127.0.0.1:0", "192.0.2.1:" + port});
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().message, "listen on 192.0.2.1:" + port +
                                     ": no network interface of this host has that address: Cannot "
                                     "assign requested address");
}

// A port held by someone else is not blamed on an earlier address of the
// other family that shares its number: ":p" and "[::]:p" are two listeners.
TEST(ListenAddress, APortHeldElsewhereIsNotCalledAnOverlap) {
  UniqueFd foreign;
  std::string port;
  for (int attempt = 0; attempt < 50 && !foreign; ++attempt) {
    port = FreePort();
    foreign = ForeignListener("::", port);
  }
  ASSERT_TRUE(foreign);
  auto r = CheckCanListen({":" + port, "[::]:" + port});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message, "listen on [::]:" + port +
                                   ": the port is in use; choose another with "
                                   "--web.listen-address: Address already in use");
  // Addresses that do ask for one listener are still named.
  foreign = UniqueFd();
  auto v6 = CheckWithFreePort([](const std::string& p) {
    return std::vector<std::string>{"[::]:" + p, "[::1]:" + p};
  }, &port);
  ASSERT_FALSE(v6.has_value());
  EXPECT_EQ(v6.error().message,
            "listen on [::1]:" + port + ": overlaps --web.listen-address [::]:" + port + " (same port)");
}

TEST(ListenAddress, TranslatesToCivetwebSyntax) {
  EXPECT_EQ(*CivetListeningPorts(":9741"), "9741");
  EXPECT_EQ(*CivetListeningPorts("127.0.0.1:0"), "127.0.0.1:0");
  if (CivetwebHasIpv6()) {
    EXPECT_EQ(*CivetListeningPorts("[::1]:9741"), "[::1]:9741");
  } else {  // Debian 12's civetweb
    EXPECT_EQ(CivetListeningPorts("[::1]:9741").error().message,
              "--web.listen-address '[::1]:9741': this build of civetweb has no IPv6 (Debian 12's "
              "is built without it); use an IPv4 address");
  }
  EXPECT_EQ(CivetListeningPorts("9741").error().message,
            "--web.listen-address '9741': expected [HOST]:PORT");
  EXPECT_EQ(CivetListeningPorts(":99999").error().message,
            "--web.listen-address ':99999': port out of range");
  EXPECT_EQ(CivetListeningPorts("::1:9741").error().message,
            "--web.listen-address '::1:9741': IPv6 addresses go in brackets: [::1]:9741");
  EXPECT_EQ(CivetListeningPorts(":http").error().message,
            "--web.listen-address ':http': bad port");
  EXPECT_EQ(CivetListeningPorts("localhost:9741").error().message,
            "--web.listen-address 'localhost:9741': the host must be an IP address (civetweb does "
            "not resolve names)");
  EXPECT_EQ(CivetListeningPorts("[::zz]:1").error().message,
            "--web.listen-address '[::zz]:1': not an IPv6 address");
}

// A web config file in a scratch directory, replaced (new inode) to change it.
class WebConfigFile : public ::testing::Test {
 protected:
  void Write(const std::string& text) {
    std::ofstream(path_ + ".new") << text;
    ASSERT_EQ(rename((path_ + ".new").c_str(), path_.c_str()), 0);
  }
  ScratchDir scratch_{"execflow-web-test"};
  const std::string dir_ = scratch_.path(), path_ = dir_ + "/web.yml";
};

const std::string kGood = "Authorization: Basic cHJvbWV0aGV1czpzM2NyZXQ=";  // prometheus:s3cret
const std::string kBad = "Authorization: Basic cHJvbWV0aGV1czp3cm9uZw==";   // prometheus:wrong

TEST_F(WebConfigFile, BasicAuthGuardsEverythingButProbes) {
  Write("basic_auth_users:\n  prometheus: " + Bcrypt("s3cret") + "\n");
  HttpOptions o;
  o.web_config_file = path_;
  o.web_config = *LoadWebConfigFile(path_);
  auto metrics = std::make_shared<StaticMetrics>();
  auto s = StartServer(metrics, std::move(o));
  ASSERT_NE(s, nullptr);
  const int port = s->port();
  auto denied = HttpRequest(port, "/metrics");
  EXPECT_EQ(denied.status, 401);
  EXPECT_NE(denied.headers.find("WWW-Authenticate: Basic realm=\"execflow\""), std::string::npos);
  EXPECT_EQ(HttpRequest(port, "/echo").status, 401);
  EXPECT_EQ(HttpRequest(port, "/metrics", "HEAD").status, 401);
  EXPECT_EQ(HttpRequest(port, "/nope").status, 401);  // which paths exist is not told either
  EXPECT_EQ(HttpRequest(port, "/healthz").status, 200);
  EXPECT_EQ(HttpRequest(port, "/readyz").status, 503);
  auto ok = HttpRequest(port, "/metrics", "GET", kGood);
  EXPECT_EQ(ok.status, 200);
  EXPECT_NE(ok.body.find("execflow_execs_total"), std::string::npos);
  EXPECT_EQ(HttpRequest(port, "/echo?q", "GET", kGood).body, "q");
  EXPECT_EQ(HttpRequest(port, "/metrics", "GET", kBad).status, 401);
  const std::string nul = "Authorization: Basic cHJvbWV0aGV1czpzM2NyZXQAanVuaw==";  // s3cret\0junk
  EXPECT_EQ(HttpRequest(port, "/metrics", "GET", nul).status, 401);
  auto m = HttpRequest(port, "/metrics", "GET", kGood).body;
  // /metrics, /echo, HEAD /metrics, /nope without credentials; one wrong; one NUL.
  EXPECT_NE(m.find("execflow_http_auth_failures_total{reason=\"missing\"} 4"), std::string::npos) << m;
  EXPECT_NE(m.find("execflow_http_auth_failures_total{reason=\"denied\"} 1"), std::string::npos) << m;
  EXPECT_NE(m.find("execflow_http_auth_failures_total{reason=\"malformed\"} 1"), std::string::npos) << m;
  EXPECT_NE(m.find("execflow_web_config_last_reload_successful 1"), std::string::npos) << m;
}

TEST_F(WebConfigFile, SystemdSocketsHaveTheSameAuthAndTimeouts) {
  Write("basic_auth_users:\n  prometheus: " + Bcrypt("s3cret") + "\n");
  UniqueFd sock(ListeningSocket());
  ASSERT_TRUE(sock);
  const int port = LocalPort(sock.get());
  HttpOptions o;
  o.web_config_file = path_;
  o.web_config = *LoadWebConfigFile(path_);
  o.read_timeout_seconds = 0.5;
  o.systemd_sockets.emplace_back(dup(sock.get()));
  auto metrics = std::make_shared<StaticMetrics>();
  auto s = HttpServer::Start(o, metrics, TestRoutes());
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_EQ(HttpRequest(port, "/metrics").status, 401);
  EXPECT_EQ(HttpRequest(port, "/metrics", "GET", kBad).status, 401);
  auto ok = HttpRequest(port, "/metrics", "GET", kGood);
  EXPECT_EQ(ok.status, 200);
  EXPECT_NE(ok.body.find("execflow_http_auth_failures_total{reason=\"denied\"} 1"), std::string::npos);
  EXPECT_NE(ok.body.find("execflow_http_auth_failures_total{reason=\"missing\"} 1"), std::string::npos);
  EXPECT_EQ(HttpRequest(port, "/healthz").status, 200);  // probes need no credentials
  // --web.read-timeout closes a silent client.
  int silent = ConnectLoopback(port);
  ASSERT_GE(silent, 0);
  EXPECT_TRUE(ClosedWithin(silent, kHang));
  close(silent);
}

// Failed logins are limited by client address: a flood of wrong passwords
// from one address is answered 429 once it has spent that address's tokens,
// while a scraper whose login was verified (from the same address) and a new
// scraper from another address are never throttled.
TEST_F(WebConfigFile, AWrongPasswordFloodIsThrottledByAddressAndNoScraperIs) {
  Write("basic_auth_users:\n  prometheus: " + Bcrypt("s3cret") + "\n  grafana: " + Bcrypt("other") + "\n");
  const std::string grafana = "Authorization: Basic Z3JhZmFuYTpvdGhlcg==";  // grafana:other
  HttpOptions o;
  const auto start = std::chrono::steady_clock::now();
  o.clock = [start] { return start; };  // no token comes back during the test
  o.web_config_file = path_;
  o.web_config = *LoadWebConfigFile(path_);
  auto metrics = std::make_shared<StaticMetrics>();
  auto s = StartServer(metrics, std::move(o));
  ASSERT_NE(s, nullptr);
  const int port = s->port();
  const char* flooder = "127.0.0.1";
  const char* other = "127.0.0.2";
  // Verified once, remembered: a scraper at the flooding address.
  ASSERT_EQ(HttpRequest(port, "/metrics", "GET", kGood, flooder).status, 200);
  // The flooding address spends its 10 tokens (no refill: the clock stands still).
  for (int i = 0; i < 10; ++i) EXPECT_EQ(HttpRequest(port, "/metrics", "GET", kBad, flooder).status, 401);
  EXPECT_EQ(HttpRequest(port, "/metrics", "GET", kBad, flooder).status, 429);
  std::atomic<int> flood_unauthorized{0}, flood_throttled{0}, flood_other{0};
  std::vector<std::thread> flood;
  for (int t = 0; t < 8; ++t) {
    flood.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        const int st = HttpRequest(port, "/metrics", "GET", kBad, flooder).status;
        (st == 401 ? flood_unauthorized : st == 429 ? flood_throttled : flood_other)++;
      }
    });
  }
  // During the flood: a new scraper at another address (its first login is a
  // bcrypt check) and the remembered one at the flooding address.
  std::vector<int> statuses;
  for (int i = 0; i < 10; ++i) {
    statuses.push_back(HttpRequest(port, "/metrics", "GET", grafana, other).status);
    statuses.push_back(HttpRequest(port, "/metrics", "GET", kGood, flooder).status);
  }
  for (auto& t : flood) t.join();
  EXPECT_EQ(statuses, std::vector<int>(20, 200));
  EXPECT_EQ(flood_unauthorized.load(), 0);
  EXPECT_EQ(flood_throttled.load(), 200);
  EXPECT_EQ(flood_other.load(), 0);
  auto m = HttpRequest(port, "/metrics", "GET", grafana, other).body;
  const std::string family = "execflow_http_auth_failures_total{reason=";
  EXPECT_NE(m.find(family + "\"denied\"} 10\n"), std::string::npos) << m;
  EXPECT_NE(m.find(family + "\"throttled\"} 201\n"), std::string::npos) << m;
}

TEST_F(WebConfigFile, IsReReadWhenItChangesAndFailsClosed) {
  Write("basic_auth_users:\n  prometheus: " + Bcrypt("s3cret") + "\n");
  HttpOptions o;
  o.web_config_file = path_;
  o.web_config = *LoadWebConfigFile(path_);
  auto metrics = std::make_shared<StaticMetrics>();
  auto s = StartServer(metrics, std::move(o));
  ASSERT_NE(s, nullptr);
  const int port = s->port();
  EXPECT_EQ(HttpRequest(port, "/metrics", "GET", kGood).status, 200);
  // Another user replaces prometheus: its remembered login no longer works.
  Write("basic_auth_users:\n  grafana: " + Bcrypt("other") + "\n");
  EXPECT_EQ(HttpRequest(port, "/metrics", "GET", kGood).status, 401);
  const std::string grafana = "Authorization: Basic Z3JhZmFuYTpvdGhlcg==";  // grafana:other
  EXPECT_EQ(HttpRequest(port, "/metrics", "GET", grafana).status, 200);
  // A file that does not load refuses everything but the probes.
  Write("basic_auth_users: [\n");
  EXPECT_EQ(HttpRequest(port, "/metrics", "GET", grafana).status, 500);
  EXPECT_EQ(HttpRequest(port, "/echo").status, 500);
  EXPECT_EQ(HttpRequest(port, "/healthz").status, 200);
  // No users at all: open again, as exporter-toolkit does.
  Write("rate_limit:\n  interval: 1h\n  burst: 2\n");
  auto m = HttpRequest(port, "/metrics");
  EXPECT_EQ(m.status, 200);
  EXPECT_NE(m.body.find("execflow_web_config_last_reload_successful 1"), std::string::npos);
  // rate_limit: 2 requests, then 429 (probes are not limited).
  EXPECT_EQ(HttpRequest(port, "/echo").status, 200);
  auto limited = HttpRequest(port, "/echo");
  EXPECT_EQ(limited.status, 429);
  EXPECT_NE(limited.headers.find("Retry-After: 1"), std::string::npos);
  EXPECT_EQ(HttpRequest(port, "/healthz").status, 200);
}

TEST_F(WebConfigFile, WatcherReportsTheLastLoad) {
  Write("basic_auth_users: {}\n");
  WebConfigWatcher w(path_, *LoadWebConfigFile(path_));
  EXPECT_TRUE(w.Current().has_value());
  EXPECT_EQ(w.reloads(), 0u);
  Write("basic_auth_users: {}\nextra: 1\n");
  auto bad = w.Current();
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().message,
            path_ + ":2: extra: unknown key (known: basic_auth_users, http_server_config, rate_limit, "
                    "tls_server_config)");
  EXPECT_FALSE(w.last_load_ok());
  EXPECT_FALSE(w.Current().has_value());  // unchanged file: not parsed again
  EXPECT_EQ(w.reloads(), 1u);
  Write("tls_server_config:\n  cert_file: c\n  key_file: k\n");
  auto tls = w.Current();
  ASSERT_FALSE(tls.has_value());
  EXPECT_EQ(tls.error().message, path_ + ": tls_server_config was added; restart execflow to serve HTTPS");
  std::remove(path_.c_str());
  auto gone = w.Current();
  ASSERT_FALSE(gone.has_value());
  EXPECT_EQ(gone.error().message, "read web config " + path_ + ": No such file or directory");
  Write("");
  EXPECT_TRUE(w.Current().has_value());
  EXPECT_TRUE(w.last_load_ok());
  EXPECT_EQ(w.reloads(), 4u);
}

}  // namespace
}  // namespace execflow
