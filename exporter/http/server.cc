#include "exporter/http/server.h"

#include <CivetServer.h>
#include <civetweb.h>
#include <prometheus/exposer.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "exporter/common/unique_fd.h"
#include "exporter/http/request_head.h"
#include "exporter/http/systemd_socket.h"
#include "exporter/metrics/families.h"

namespace execflow {

// The server's own counters, exported next to the collectors' families.
class HttpMetrics final : public prometheus::Collectable {
 public:
  HttpMetrics(std::shared_ptr<WebConfigWatcher> web, std::shared_ptr<WaitingConnections> waiting)
      : web_(std::move(web)), waiting_(std::move(waiting)) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

  std::atomic<uint64_t> auth_failures[5]{};  // by AuthResult
  std::atomic<uint64_t> rate_limited{0};
  std::atomic<uint64_t> config_errors{0};

 private:
  std::shared_ptr<WebConfigWatcher> web_;
  std::shared_ptr<WaitingConnections> waiting_;
};

std::vector<prometheus::MetricFamily> HttpMetrics::Collect() const {
  auto failures = Counter("execflow_http_auth_failures_total",
                          "Requests refused by basic auth, by reason: missing or malformed "
                          "credentials, denied (wrong user or password), throttled (too many "
                          "failed checks from the client's address: answered 429 without a bcrypt "
                          "check).");
  for (AuthResult r : {AuthResult::kMissing, AuthResult::kMalformed, AuthResult::kDenied,
                       AuthResult::kThrottled}) {
    AddCounter(failures, {{"reason", AuthResultName(r)}},
               static_cast<double>(auth_failures[static_cast<int>(r)].load()));
  }
  return {std::move(failures),
          Counter("execflow_http_rate_limited_total",
                  "Requests answered 429 by the web config's rate_limit.",
                  static_cast<double>(rate_limited.load())),
          Gauge("execflow_web_config_last_reload_successful",
                "1 when --web.config.file, as it is now, loaded; 0 while it does not (requests "
                "that need it are refused with 500).",
                web_->last_load_ok() ? 1 : 0),
          Counter("execflow_http_waiting_connections_closed_total",
                  "Connections closed while they waited for their client (TLS handshake, "
                  "request head, next request on a kept-alive connection) because all but "
                  "one in eight of the --web.max-connections workers were waiting: the one "
                  "waiting longest makes room for new connections.",
                  static_cast<double>(waiting_->closed()))};
}

namespace {

constexpr const char* kAllow = "GET, HEAD, OPTIONS";
constexpr const char* kText = "text/plain; charset=utf-8";

// begin_request gets nothing of ours (the Exposer owns the user data): servers are
// found by context, registered in init_context before any thread could serve.
std::mutex g_servers_mu;
std::map<const mg_context*, HttpServer*> g_servers;
thread_local HttpServer* t_starting = nullptr;  // the server whose Exposer is being built

HttpServer* ServerOfContext(const mg_context* ctx) {
  std::lock_guard lock(g_servers_mu);
  auto it = g_servers.find(ctx);
  return it == g_servers.end() ? nullptr : it->second;
}

HttpServer* ServerOf(const mg_connection* conn) { return ServerOfContext(mg_get_context(conn)); }

struct Reply {
  int status = 200;
  std::string content_type = kText;
  std::string body;
  std::vector<std::pair<const char*, std::string>> headers;
  bool close = false;
};

// Set in CloseWithoutReadingBody(): HttpError() then leaves the call to civetweb.
thread_local bool t_marking_close = false;

// civetweb drains an unread request body before reusing or closing the connection,
// as long as the client sends it: a body trickled a byte at a time would hold a
// worker for hours. mg_send_http_error() marks the connection to close without
// that; our response is already out, so its own (a bodiless 304) is refused.
void CloseWithoutReadingBody(mg_connection* conn) {
  t_marking_close = true;
  mg_send_http_error(conn, 304, "%s", "");
  t_marking_close = false;
}

void Send(mg_connection* conn, const Reply& r, bool head) {
  mg_response_header_start(conn, r.status);
  if (r.status != 204) {
    mg_response_header_add(conn, "Content-Type", r.content_type.c_str(), -1);
    mg_response_header_add(conn, "Content-Length", std::to_string(r.body.size()).c_str(), -1);
  }
  mg_response_header_add(conn, "Cache-Control", "no-store", -1);
  for (const auto& [name, value] : r.headers) mg_response_header_add(conn, name, value.c_str(), -1);
  // Otherwise civetweb adds "Connection: keep-alive" or "close", as it will do.
  if (r.close) mg_response_header_add(conn, "Connection", "close", -1);
  mg_response_header_send(conn);
  if (!head && !r.body.empty()) mg_write(conn, r.body.data(), r.body.size());
  if (r.close) CloseWithoutReadingBody(conn);
}

int BeginRequest(mg_connection* conn) {
  if (HttpServer* s = ServerOf(conn)) return s->HandleRequest(conn);
  // Accepted before registration (or while stopping): serve nothing unauthenticated.
  Send(conn, {503, kText, "starting\n", {{"Retry-After", "1"}}, true}, false);
  return 503;
}

// Replaces civetweb's answer to a request it could not parse, which echoes the
// client's version (CR and LF included); civetweb then closes the connection.
int HttpError(mg_connection* conn, int status, const char*) {
  if (t_marking_close) return 1;
  const mg_request_info* ri = mg_get_request_info(conn);
  const std::string answer =
      AnswerToUnparsedRequest(status, ri && ri->http_version ? ri->http_version : "");
  mg_write(conn, answer.data(), answer.size());
  return 0;
}

int InitConnection(const mg_connection* conn, void**) {
  if (HttpServer* s = ServerOf(conn)) s->HandleNewConnection(conn);
  return 0;
}

void EndRequest(const mg_connection* conn, int) {
  if (HttpServer* s = ServerOf(conn)) s->HandleEndRequest();
}

void ConnectionClose(const mg_connection* conn) {
  // Const, but civetweb still owns the connection and lets us write to it.
  auto* c = const_cast<mg_connection*>(conn);
  if (HttpServer* s = ServerOf(c)) s->HandleClose(c);
}

int InitSsl(void* ssl_ctx, void*) { return t_starting && t_starting->InitTls(ssl_ctx) ? 1 : -1; }

void InitContext(const mg_context* ctx) {
  if (t_starting) t_starting->Registered(ctx);
}

// civetweb's threads sleep in poll(): the master on the listeners (checking its stop
// flag every 2 s), a worker on its client until the read timeout. This signal ends one
// thread's wait: the master's (EINTR even with SA_RESTART), so a stop takes
// milliseconds (a connection would wake it too, but on a systemd socket it would stay
// queued and start the service again); a worker's, to close its connection
// (WaitingConnections). civetweb 1.16 polls again after EINTR, so on a worker the
// handler also shuts the connection's socket down: the poll returns, the read sees the
// end of the stream and civetweb closes the connection as if the client had.
// SA_RESTART lets other interrupted calls (a pipe write) carry on.
constexpr int kWakeSignal = SIGURG;  // ignored by default; nothing here uses out-of-band data

// The connection this worker thread serves, set as civetweb hands it one, and its socket
// when known (a TLS handshake gives it). Read by the signal handler on the same thread.
thread_local std::atomic<const mg_connection*> t_connection{nullptr};
thread_local std::atomic<int> t_socket{-1};

// The socket of the connection `ri` describes, found by its addresses (civetweb does
// not hand out its sockets); -1 if none. Sockets take the lowest free numbers, so the
// search is short. Only async-signal-safe calls: it runs in the signal handler.
int FindSocket(const mg_request_info* ri) {
  unsigned char want[sizeof(in6_addr)] = {};
  const bool v6 = std::strchr(ri->remote_addr, ':') != nullptr;
  if (inet_pton(v6 ? AF_INET6 : AF_INET, ri->remote_addr, want) != 1) return -1;
  rlimit files{};
  const rlim_t end = getrlimit(RLIMIT_NOFILE, &files) == 0 ? std::min<rlim_t>(files.rlim_cur, 1 << 20) : 1024;
  for (int fd = 0; static_cast<rlim_t>(fd) < end; ++fd) {
    sockaddr_storage remote{}, local{};
    socklen_t rlen = sizeof remote, llen = sizeof local;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&remote), &rlen) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&local), &llen) != 0 || remote.ss_family != local.ss_family) {
      continue;
    }
    if (!v6 && remote.ss_family == AF_INET) {
      const auto& r = reinterpret_cast<const sockaddr_in&>(remote);
      if (ntohs(r.sin_port) == ri->remote_port &&
          ntohs(reinterpret_cast<const sockaddr_in&>(local).sin_port) == ri->server_port &&
          std::memcmp(&r.sin_addr, want, sizeof r.sin_addr) == 0) {
        return fd;
      }
    } else if (v6 && remote.ss_family == AF_INET6) {
      const auto& r = reinterpret_cast<const sockaddr_in6&>(remote);
      if (ntohs(r.sin6_port) == ri->remote_port &&
          ntohs(reinterpret_cast<const sockaddr_in6&>(local).sin6_port) == ri->server_port &&
          std::memcmp(&r.sin6_addr, want, sizeof r.sin6_addr) == 0) {
        return fd;
      }
    }
  }
  return -1;
}

void OnWake(int) {
  const int saved = errno;
  int fd = t_socket.load(std::memory_order_relaxed);
  if (fd < 0) {
    // mg_get_request_info() is null until civetweb has taken the connection in: the
    // signal comes again (WaitingConnections::RetryUntilStopped).
    const mg_connection* conn = t_connection.load(std::memory_order_relaxed);
    const mg_request_info* ri = conn ? mg_get_request_info(conn) : nullptr;
    if (ri) fd = FindSocket(ri);
  }
  if (fd >= 0) shutdown(fd, SHUT_RDWR);
  errno = saved;
}

void InstallWakeHandler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa{};
    sa.sa_handler = OnWake;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(kWakeSignal, &sa, nullptr);
  });
}

// civetweb's threads inherit the mask of the thread that started the server.
void UnblockWakeSignal() {
  sigset_t wake;
  sigemptyset(&wake);
  sigaddset(&wake, kWakeSignal);
  pthread_sigmask(SIG_UNBLOCK, &wake, nullptr);
}

constexpr int kMasterThread = 0;  // civetweb's thread_type of its accepting thread
constexpr int kWorkerThread = 1;

void* InitThread(const mg_context* ctx, int thread_type) {
  if (thread_type == kMasterThread) {
    if (HttpServer* s = ServerOfContext(ctx)) s->MasterThread(true);
  }
  if (thread_type == kWorkerThread) UnblockWakeSignal();
  return nullptr;
}

void ExitThread(const mg_context* ctx, int thread_type, void*) {
  if (HttpServer* s = ServerOfContext(ctx)) {
    if (thread_type == kMasterThread) s->MasterThread(false);
    // No signal may be sent to a thread that has ended.
    if (thread_type == kWorkerThread) s->WorkerExits();
  }
}

const CivetCallbacks& Callbacks() {
  static const CivetCallbacks cb = [] {
    CivetCallbacks c{};
    c.begin_request = BeginRequest;
    c.init_connection = InitConnection;
    c.end_request = EndRequest;
    c.connection_close = ConnectionClose;
    c.http_error = HttpError;
    c.init_ssl = InitSsl;
    c.init_context = InitContext;
    c.init_thread = InitThread;
    c.exit_thread = ExitThread;
    return c;
  }();
  return cb;
}

struct HostPort {
  std::string host;  // without brackets; empty: any IPv4 address
  int port = 0;
};

Result<HostPort> SplitAddress(std::string_view addr) {
  auto bad = [&](const std::string& why) {
    return Fail("--web.listen-address '" + std::string(addr.substr(0, 128)) + "': " + why);
  };
  auto colon = addr.rfind(':');
  if (colon == std::string_view::npos) return bad("expected [HOST]:PORT");
  std::string_view host = addr.substr(0, colon), port = addr.substr(colon + 1);
  if (port.empty() || port.size() > 5) return bad("bad port");
  for (char c : port) {
    if (c < '0' || c > '9') return bad("bad port");
  }
  const int p = std::stoi(std::string(port));
  if (p > 65535) return bad("port out of range");
  if (host.empty()) return HostPort{"", p};
  if (host.front() == '[') {
    if (host.back() != ']') return bad("unterminated IPv6 address");
    std::string h(host.substr(1, host.size() - 2));
    in6_addr a6;
    if (inet_pton(AF_INET6, h.c_str(), &a6) != 1) return bad("not an IPv6 address");
    return HostPort{h, p};
  }
  if (host.find(':') != std::string_view::npos) return bad("IPv6 addresses go in brackets: [::1]:9741");
  in_addr a4;
  if (inet_pton(AF_INET, std::string(host).c_str(), &a4) != 1) {
    return bad("the host must be an IP address (civetweb does not resolve names)");
  }
  return HostPort{std::string(host), p};
}

std::string Joined(const HostPort& hp) {
  if (hp.host.empty()) return "0.0.0.0:" + std::to_string(hp.port);
  if (hp.host.find(':') != std::string::npos) return "[" + hp.host + "]:" + std::to_string(hp.port);
  return hp.host + ":" + std::to_string(hp.port);
}

// --web.systemd-socket. civetweb 1.15 binds its own listeners and takes no socket;
// relaying connections to it would be a second network path whose worker limit,
// timeouts, TLS and client address must match civetweb's. So each systemd socket
// replaces a listener: listening_ports gets a placeholder per socket (127.0.0.1:0,
// "s" under TLS), and init_context (after binding, before any thread) dup3()s the
// socket onto the placeholder's descriptor, the only thing civetweb keeps, so it
// serves the socket as any listener. At shutdown systemd keeps the socket; new
// connections wait in it and start the service again.
// HttpServer.ServesSystemdSocketsLikeItsOwnListeners fails if a civetweb version breaks this.

// Our fd listening on 127.0.0.1:port: civetweb's placeholder (bound to port 0, so unique).
Result<int> PlaceholderFd(int port) {
  std::error_code ec;
  std::filesystem::directory_iterator fds("/proc/self/fd", ec);
  if (ec) return Fail("list /proc/self/fd", ec.value());
  for (const auto& entry : fds) {
    const std::string name = entry.path().filename();
    int fd = -1;
    if (std::from_chars(name.data(), name.data() + name.size(), fd).ec != std::errc()) continue;
    sockaddr_in a{};
    socklen_t len = sizeof(a);
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0 || a.sin_family != AF_INET ||
        a.sin_addr.s_addr != htonl(INADDR_LOOPBACK) || ntohs(a.sin_port) != port) {
      continue;
    }
    int listening = 0;
    len = sizeof(listening);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening) return fd;
  }
  return Fail("no descriptor listens on civetweb's placeholder 127.0.0.1:" + std::to_string(port));
}

Result<void> AdoptSockets(const mg_context* ctx, const std::vector<UniqueFd>& sockets) {
  std::vector<mg_server_port> ports(sockets.size() + 1);
  const int n = mg_get_server_ports(ctx, static_cast<int>(ports.size()), ports.data());
  if (n != static_cast<int>(sockets.size())) {
    return Fail("civetweb opened " + std::to_string(n) + " placeholder listeners for " +
                std::to_string(sockets.size()) + " systemd sockets");
  }
  for (size_t i = 0; i < sockets.size(); ++i) {
    auto fd = PlaceholderFd(ports[i].port);
    if (!fd) return std::unexpected(fd.error());
    if (dup3(sockets[i].get(), *fd, O_CLOEXEC) < 0) {
      return Fail("serve systemd socket " + SocketAddress(sockets[i].get()), errno);
    }
  }
  return {};
}

}  // namespace

bool CivetwebHasIpv6() { return mg_check_feature(8) != 0; }

Result<std::string> CivetListeningPorts(std::string_view addr) {
  auto hp = SplitAddress(addr);
  if (!hp) return std::unexpected(hp.error());
  if (hp->host.empty()) return std::to_string(hp->port);
  if (hp->host.find(':') != std::string::npos && !CivetwebHasIpv6()) {
    return Fail("--web.listen-address '" + std::string(addr.substr(0, 128)) +
                "': this build of civetweb has no IPv6 (Debian 12's is built without it); use an "
                "IPv4 address");
  }
  return std::string(addr);
}

namespace {

// Whether two addresses ask for one listener: same family and port, same host or a
// wildcard. IPv4 and IPv6 never overlap: civetweb's IPv6 listeners are IPv6-only.
bool Overlap(const sockaddr_storage& a, const sockaddr_storage& b) {
  if (a.ss_family != b.ss_family) return false;
  if (a.ss_family == AF_INET) {
    const auto& x = reinterpret_cast<const sockaddr_in&>(a);
    const auto& y = reinterpret_cast<const sockaddr_in&>(b);
    return x.sin_port != 0 && x.sin_port == y.sin_port &&
           (x.sin_addr.s_addr == y.sin_addr.s_addr || x.sin_addr.s_addr == INADDR_ANY ||
            y.sin_addr.s_addr == INADDR_ANY);
  }
  const auto& x = reinterpret_cast<const sockaddr_in6&>(a);
  const auto& y = reinterpret_cast<const sockaddr_in6&>(b);
  return x.sin6_port != 0 && x.sin6_port == y.sin6_port &&
         (IN6_ARE_ADDR_EQUAL(&x.sin6_addr, &y.sin6_addr) || IN6_IS_ADDR_UNSPECIFIED(&x.sin6_addr) ||
          IN6_IS_ADDR_UNSPECIFIED(&y.sin6_addr));
}

}  // namespace

Result<void> CheckCanListen(const std::vector<std::string>& addresses) {
  // The server starts after every capability is dropped (App::Start).
  int unprivileged_from = 1024;
  if (std::FILE* f = std::fopen("/proc/sys/net/ipv4/ip_unprivileged_port_start", "r")) {
    if (std::fscanf(f, "%d", &unprivileged_from) != 1) unprivileged_from = 1024;
    std::fclose(f);
  }
  // All held at once, as civetweb will, so overlaps (":9741", "127.0.0.1:9741") fail too.
  std::vector<UniqueFd> held;
  std::vector<sockaddr_storage> seen;
  for (const std::string& addr : addresses) {
    auto hp = SplitAddress(addr);
    if (!hp) return std::unexpected(hp.error());
    if (hp->port != 0 && hp->port < unprivileged_from) {
      return Fail("listen on " + addr + ": ports below " + std::to_string(unprivileged_from) +
                  " need CAP_NET_BIND_SERVICE, which execflow gives up before it listens; use a port "
                  "of " + std::to_string(unprivileged_from) +
                  " or more (net.ipv4.ip_unprivileged_port_start), or a systemd socket "
                  "(--web.systemd-socket)");
    }
    sockaddr_storage ss{};
    socklen_t len;
    const bool v6 = hp->host.find(':') != std::string::npos;
    if (v6) {
      auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
      a->sin6_family = AF_INET6;
      a->sin6_port = htons(static_cast<uint16_t>(hp->port));
      inet_pton(AF_INET6, hp->host.c_str(), &a->sin6_addr);
      len = sizeof(*a);
    } else {
      auto* a = reinterpret_cast<sockaddr_in*>(&ss);
      a->sin_family = AF_INET;
      a->sin_port = htons(static_cast<uint16_t>(hp->port));
      if (!hp->host.empty()) inet_pton(AF_INET, hp->host.c_str(), &a->sin_addr);
      len = sizeof(*a);
    }
    const std::string where = "listen on " + addr;
    UniqueFd fd(socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return Fail(where, errno);
    // As civetweb sets them: "[::]:9741" is IPv6 only, beside "0.0.0.0:9741".
    const int one = 1;
    setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (v6) setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0 || listen(fd.get(), 1) != 0) {
      const int err = errno;
      switch (err) {
        case EADDRINUSE:
          for (size_t i = 0; i < seen.size(); ++i) {
            if (Overlap(seen[i], ss)) {
              return Fail(where + ": overlaps --web.listen-address " + addresses[i] +
                          " (same port)");
            }
          }
          // Another process, or an address of another family that shares this port.
          return Fail(where + ": the port is in use; choose another with --web.listen-address",
                      err);
        case EADDRNOTAVAIL:
          return Fail(where + ": no network interface of this host has that address", err);
        default:
          return Fail(where, err);
      }
    }
    held.push_back(std::move(fd));
    seen.push_back(ss);
  }
  return {};
}

namespace {

// civetweb's options; `ports`: its listening_ports entries, one per listener.
std::vector<std::string> CivetOptions(const HttpOptions& options, const std::vector<std::string>& ports) {
  auto ms = [](double seconds) { return std::to_string(std::llround(seconds * 1000)); };
  std::string listening;
  for (const std::string& p : ports) listening += (listening.empty() ? "" : ",") + p;
  return {"num_threads", std::to_string(options.max_connections),
          "connection_queue", "64",
          "listen_backlog", "256",
          "request_timeout_ms", ms(options.read_timeout_seconds),
          "enable_keep_alive", options.idle_timeout_seconds > 0 ? "yes" : "no",
          "keep_alive_timeout_ms", ms(options.idle_timeout_seconds),
          "max_request_size", "8192",
          // Headers and body are separate writes: keep-alive clients would wait a delayed ACK.
          "tcp_nodelay", "1",
          "listening_ports", listening};
}

// "listen on 127.0.0.1:9741, [::1]:9741", for errors.
std::string ListenWhere(bool systemd, const std::vector<std::string>& addresses) {
  std::string where = systemd ? "listen on systemd sockets " : "listen on ";
  for (size_t i = 0; i < addresses.size(); ++i) where += (i ? ", " : "") + addresses[i];
  return where;
}

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::Start(
    const HttpOptions& options, std::weak_ptr<prometheus::Collectable> metrics,
    std::map<std::string, HttpHandler> routes) {
  const bool systemd = !options.systemd_sockets.empty();
  if (!systemd && options.listen_addresses.empty()) return Fail("no address to listen on");
  std::vector<std::string> ports;  // civetweb's listening_ports, one per listener
  std::vector<std::string> addresses;
  if (systemd) {
    for (const UniqueFd& fd : options.systemd_sockets) {
      ports.push_back("127.0.0.1:0");
      addresses.push_back(SocketAddress(fd.get()));
    }
  } else {
    for (const std::string& addr : options.listen_addresses) {
      auto p = CivetListeningPorts(addr);
      if (!p) return std::unexpected(p.error());
      ports.push_back(*p);
    }
  }
  if (options.telemetry_path.empty() || options.telemetry_path.front() != '/') {
    return Fail("--web.telemetry-path '" + options.telemetry_path + "': must start with /");
  }
  std::unique_ptr<HttpServer> s(new HttpServer());
  s->routes_ = std::move(routes);
  s->telemetry_path_ = options.telemetry_path;
  s->clock_ = options.clock;
  s->web_ = std::make_shared<WebConfigWatcher>(options.web_config_file, options.web_config);
  const int kept_for_new = options.max_connections / 8;
  s->waiting_ = std::make_shared<WaitingConnections>(
      kept_for_new > 0 ? static_cast<size_t>(options.max_connections - kept_for_new) : 0,
      [](pthread_t worker) { pthread_kill(worker, kWakeSignal); });
  s->retry_closing_ = std::thread([w = s->waiting_] { w->RetryUntilStopped(std::chrono::milliseconds(100)); });
  s->http_metrics_ = std::make_shared<HttpMetrics>(s->web_, s->waiting_);
  if (options.web_config.tls.enabled()) {
    if (auto ok = LoadTlsLibraries(options.tls_compat_dir); !ok) return std::unexpected(ok.error());
    s->tls_ = std::make_unique<TlsServer>(s->web_, [server = s.get()](int fd) { server->HandleTlsHandshake(fd); });
    // Fails here, with the reason, rather than at the first handshake.
    if (auto m = LoadTlsMaterial(options.web_config.tls); !m) return std::unexpected(m.error());
    for (std::string& p : ports) p += "s";  // every listener
  }
  const std::string where = ListenWhere(systemd, systemd ? addresses : options.listen_addresses);
  InstallWakeHandler();
  if (systemd) s->adopt_ = &options.systemd_sockets;
  try {
    t_starting = s.get();
    s->exposer_ = std::make_unique<prometheus::Exposer>(CivetOptions(options, ports), &Callbacks());
    t_starting = nullptr;
  } catch (const std::exception& e) {
    t_starting = nullptr;
    return Fail(where + ": " + e.what());
  }
  s->adopt_ = nullptr;
  if (!s->adopted_) return Fail(where + ": " + s->adopted_.error().message);
  s->exposer_->RegisterCollectable(metrics, options.telemetry_path);
  s->exposer_->RegisterCollectable(s->http_metrics_, options.telemetry_path);
  if (systemd) {
    sockaddr_in6 a{};  // sin_port and sin6_port share their place
    socklen_t len = sizeof(a);
    getsockname(options.systemd_sockets.front().get(), reinterpret_cast<sockaddr*>(&a), &len);
    s->port_ = ntohs(a.sin6_port);
  } else {
    // The kernel's choice where a port is 0.
    auto bound = s->exposer_->GetListeningPorts();
    if (bound.size() != ports.size()) {
      return Fail(where + ": " + std::to_string(bound.size()) + " of " +
                  std::to_string(ports.size()) + " bound");
    }
    for (size_t i = 0; i < bound.size(); ++i) {
      HostPort hp = *SplitAddress(options.listen_addresses[i]);
      hp.port = bound[i];
      addresses.push_back(Joined(hp));
    }
    s->port_ = bound.front();
  }
  s->addresses_ = std::move(addresses);
  s->SetGate(Gate::kOpen);
  return s;
}

void HttpServer::SetGate(Gate g) {
  {
    std::lock_guard lock(gate_mu_);
    gate_ = g;
  }
  gate_cv_.notify_all();
}

void HttpServer::Registered(const mg_context* ctx) {
  ctx_ = ctx;
  {
    std::lock_guard lock(g_servers_mu);
    g_servers[ctx] = this;
  }
  if (adopt_) adopted_ = AdoptSockets(ctx, *adopt_);
}

void HttpServer::MasterThread(bool running) {
  std::lock_guard lock(master_mu_);
  master_running_ = running;
  if (running) {
    master_ = pthread_self();
    UnblockWakeSignal();
  }
}

void HttpServer::WorkerExits() { waiting_->Closed(pthread_self()); }

// Under master_mu_, so the thread cannot exit (ExitThread waits) while signalled.
void HttpServer::Wake() {
  std::lock_guard lock(master_mu_);
  if (master_running_) pthread_kill(master_, kWakeSignal);
}

bool HttpServer::InitTls(void* ssl_ctx) { return tls_ && tls_->InitContext(ssl_ctx); }

HttpServer::~HttpServer() {
  SetGate(Gate::kClosed);
  std::atomic<bool> stopped{false};
  std::thread waker([&] {
    while (!stopped) {
      Wake();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  exposer_.reset();
  stopped = true;
  waker.join();
  if (waiting_) waiting_->Stop();
  if (retry_closing_.joinable()) retry_closing_.join();
  std::lock_guard lock(g_servers_mu);
  if (auto it = g_servers.find(ctx_); it != g_servers.end() && it->second == this) g_servers.erase(it);
}

const HttpHandler* HttpServer::Route(const std::string& path) const {
  auto it = routes_.find(path);
  return it == routes_.end() ? nullptr : &it->second;
}

void HttpServer::HandleNewConnection(const mg_connection* conn) {
  t_connection = conn;
  waiting_->Accepted(pthread_self(), std::chrono::steady_clock::now());
}

void HttpServer::HandleTlsHandshake(int fd) {
  t_socket = fd;
  waiting_->Accepted(pthread_self(), std::chrono::steady_clock::now());
}

void HttpServer::HandleEndRequest() {
  waiting_->Waiting(pthread_self(), std::chrono::steady_clock::now());
}

int HttpServer::HandleRequest(mg_connection* conn) {
  waiting_->Serving(pthread_self());
  const mg_request_info* ri = mg_get_request_info(conn);
  const std::string_view method = ri->request_method ? ri->request_method : "";
  const std::string path = ri->local_uri ? ri->local_uri : "";
  const bool head = method == "HEAD";
  auto reply = [&](Reply r) {
    Send(conn, r, head);
    return r.status;
  };
  bool closed = false;
  {
    std::unique_lock lock(gate_mu_);
    gate_cv_.wait(lock, [this] { return gate_ != Gate::kStarting; });
    closed = gate_ == Gate::kClosed;
  }
  if (closed) return reply({503, kText, "stopping\n", {{"Retry-After", "1"}}, true});
  // First: a request that may hide another in its body is answered once, closed unread.
  std::vector<HeaderField> headers;
  headers.reserve(static_cast<size_t>(std::max(ri->num_headers, 0)));
  for (int i = 0; i < ri->num_headers; ++i) {
    headers.push_back({ri->http_headers[i].name ? ri->http_headers[i].name : "",
                       ri->http_headers[i].value ? ri->http_headers[i].value : ""});
  }
  if (const HeadProblem p = CheckRequestHead(ri->http_version ? ri->http_version : "", headers);
      p != HeadProblem::kNone) {
    return reply({400, kText, p == HeadProblem::kBody ? "no endpoint takes a request body\n" : "bad request\n",
                  {}, true});
  }
  const bool known = path == telemetry_path_ || routes_.count(path) > 0;

  // Probes answer without credentials and before any limit: they reveal
  // only that the process runs, and must keep answering under load.
  if (path != "/healthz" && path != "/readyz") {
    auto web = web_->Current();
    if (!web) {
      ++http_metrics_->config_errors;
      return reply({500, kText, "the web config does not load; see the exporter's log\n", {}, true});
    }
    const auto now = clock_();
    if (const auto& limit = (*web)->rate_limit; limit && !limit->Take(now)) {
      ++http_metrics_->rate_limited;
      return reply({429, kText, "too many requests\n", {{"Retry-After", "1"}}});
    }
    if (method != "OPTIONS") {
      const AuthResult a = (*web)->auth->Check(mg_get_header(conn, "Authorization"), ri->remote_addr, now);
      if (a == AuthResult::kThrottled) {
        ++http_metrics_->auth_failures[static_cast<int>(a)];
        return reply({429, kText, "too many failed logins; try again later\n", {{"Retry-After", "1"}}});
      }
      if (a != AuthResult::kAllowed) {
        ++http_metrics_->auth_failures[static_cast<int>(a)];
        return reply({401, kText, "unauthorized\n", {{"WWW-Authenticate", "Basic realm=\"execflow\""}}});
      }
    }
  }
  if (!known) return reply({404, kText, "not found\n", {}});
  if (method == "OPTIONS") return reply({204, "", "", {{"Allow", kAllow}}});
  if (!head && method != "GET") {
    return reply({405, kText, "method not allowed\n", {{"Allow", kAllow}}});
  }
  if (path == telemetry_path_) {
    if (!head) return 0;  // prometheus-cpp serves GET
    // HEAD: the headers of a scrape, without collecting one.
    mg_response_header_start(conn, 200);
    mg_response_header_add(conn, "Content-Type", kText, -1);
    mg_response_header_add(conn, "Cache-Control", "no-store", -1);
    mg_response_header_send(conn);
    return 200;
  }
  HttpResponse r = (*Route(path))(ri->query_string ? ri->query_string : "");
  return reply({r.status, r.content_type, std::move(r.body), {}});
}

void HttpServer::HandleClose(mg_connection* conn) {
  // A signal sent while the connection was waiting lands by the time Closed() has the
  // table (it waits for the sender's lock): on this connection, not the next.
  waiting_->Closed(pthread_self());
  t_connection = nullptr;
  t_socket = -1;
  // civetweb drops a request for "*" unanswered; answer here, while it holds the socket.
  const mg_request_info* ri = mg_get_request_info(conn);
  if (!ri || ri->local_uri || !ri->request_uri || std::strcmp(ri->request_uri, "*") != 0 ||
      !ri->request_method) {
    return;
  }
  if (std::strcmp(ri->request_method, "OPTIONS") == 0) {
    mg_printf(conn, "HTTP/1.1 204 No Content\r\nAllow: %s\r\nConnection: close\r\n\r\n", kAllow);
  } else {
    mg_printf(conn, "HTTP/1.1 400 Bad Request\r\nContent-Type: %s\r\nContent-Length: 12\r\n"
              "Connection: close\r\n\r\nbad request\n", kText);
  }
}

}  // namespace execflow
