#include "exporter/http/server.h"

#include <CivetServer.h>
#include <civetweb.h>
#include <prometheus/exposer.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "exporter/bpf/handles.h"
#include "exporter/metrics/families.h"

namespace execflow {

// The server's own counters, exported next to the collectors' families.
class HttpMetrics final : public prometheus::Collectable {
 public:
  explicit HttpMetrics(std::shared_ptr<WebConfigWatcher> web) : web_(std::move(web)) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

  std::atomic<uint64_t> auth_failures[5]{};  // by AuthResult
  std::atomic<uint64_t> rate_limited{0};
  std::atomic<uint64_t> config_errors{0};

 private:
  std::shared_ptr<WebConfigWatcher> web_;
};

std::vector<prometheus::MetricFamily> HttpMetrics::Collect() const {
  auto failures = Counter("execflow_http_auth_failures_total",
                          "Requests refused by basic auth, by reason: missing or malformed "
                          "credentials, denied (wrong user or password), throttled (too many "
                          "failed checks: answered 429 without a bcrypt check).");
  for (AuthResult r : {AuthResult::kMissing, AuthResult::kMalformed, AuthResult::kDenied,
                       AuthResult::kThrottled}) {
    AddCounter(failures, {{"reason", AuthResultName(r)}},
               static_cast<double>(auth_failures[static_cast<int>(r)].load()));
  }
  auto limited = Counter("execflow_http_rate_limited_total",
                         "Requests answered 429 by the web config's rate_limit.");
  AddCounter(limited, {}, static_cast<double>(rate_limited.load()));
  auto ok = Gauge("execflow_web_config_last_reload_successful",
                  "1 when --web.config.file, as it is now, loaded; 0 while it does not (requests "
                  "that need it are refused with 500).");
  AddGauge(ok, {}, web_->last_load_ok() ? 1 : 0);
  return {std::move(failures), std::move(limited), std::move(ok)};
}

namespace {

constexpr const char* kAllow = "GET, HEAD, OPTIONS";
constexpr const char* kText = "text/plain; charset=utf-8";

// civetweb gives begin_request nothing of ours (the Exposer owns the
// context's user data), so servers are found by their context, registered
// from init_context: before civetweb starts a thread that could serve.
std::mutex g_servers_mu;
std::map<const mg_context*, HttpServer*> g_servers;
thread_local HttpServer* t_starting = nullptr;  // the server whose Exposer is being built

HttpServer* ServerOf(const mg_connection* conn) {
  std::lock_guard lock(g_servers_mu);
  auto it = g_servers.find(mg_get_context(conn));
  return it == g_servers.end() ? nullptr : it->second;
}

struct Reply {
  int status = 200;
  std::string content_type = kText;
  std::string body;
  std::vector<std::pair<const char*, std::string>> headers;
  bool close = false;
};

// civetweb reads and drops an unread request body before it reuses or
// closes the connection, for as long as the client keeps sending it: a body
// trickled a byte at a time would hold a worker for hours. mg_send_http_error()
// is the public call that marks a connection to be closed without that; with
// our response already out, its own (bodiless, for a 304) is refused, so all
// it does is mark the connection.
void CloseWithoutReadingBody(mg_connection* conn) { mg_send_http_error(conn, 304, "%s", ""); }

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
  // Accepted before this server was registered (or while it stops): never
  // serve anything unauthenticated.
  Send(conn, {503, kText, "starting\n", {{"Retry-After", "1"}}, true}, false);
  return 503;
}

void ConnectionClose(const mg_connection* conn) {
  // civetweb calls this with a const pointer to a connection it still owns
  // and can still write to.
  auto* c = const_cast<mg_connection*>(conn);
  if (HttpServer* s = ServerOf(c)) s->HandleClose(c);
}

int InitSsl(void* ssl_ctx, void*) { return t_starting && t_starting->InitTls(ssl_ctx) ? 1 : -1; }

void InitContext(const mg_context* ctx) {
  if (t_starting) t_starting->Registered(ctx);
}

const CivetCallbacks& Callbacks() {
  static const CivetCallbacks cb = [] {
    CivetCallbacks c{};
    c.begin_request = BeginRequest;
    c.connection_close = ConnectionClose;
    c.init_ssl = InitSsl;
    c.init_context = InitContext;
    return c;
  }();
  return cb;
}

// civetweb's listener sleeps in poll() for up to 2 s between stop-flag checks;
// a connection to it ends the wait, so shutdown takes milliseconds.
void PokeListener(const std::string& host, int port) {
  sockaddr_storage ss{};
  socklen_t len;
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    len = sizeof(*v6);
  } else {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) != 1 || v4->sin_addr.s_addr == INADDR_ANY) {
      v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    }
    len = sizeof(*v4);
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  connect(fd, reinterpret_cast<sockaddr*>(&ss), len);
  close(fd);
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

}  // namespace

Result<std::string> CivetListeningPorts(std::string_view addr) {
  auto hp = SplitAddress(addr);
  if (!hp) return std::unexpected(hp.error());
  if (hp->host.empty()) return std::to_string(hp->port);
  return std::string(addr);
}

Result<void> CheckCanListen(std::string_view addr) {
  auto hp = SplitAddress(addr);
  if (!hp) return std::unexpected(hp.error());
  // The server starts after every capability is dropped (App::Start).
  int unprivileged_from = 1024;
  if (std::FILE* f = std::fopen("/proc/sys/net/ipv4/ip_unprivileged_port_start", "r")) {
    if (std::fscanf(f, "%d", &unprivileged_from) != 1) unprivileged_from = 1024;
    std::fclose(f);
  }
  if (hp->port != 0 && hp->port < unprivileged_from) {
    return Fail("listen on " + std::string(addr) + ": ports below " + std::to_string(unprivileged_from) +
                " need CAP_NET_BIND_SERVICE, which execflow gives up before it listens; use a port of " +
                std::to_string(unprivileged_from) + " or more (net.ipv4.ip_unprivileged_port_start)");
  }
  sockaddr_storage ss{};
  socklen_t len;
  if (hp->host.find(':') != std::string::npos) {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(hp->port));
    inet_pton(AF_INET6, hp->host.c_str(), &v6->sin6_addr);
    len = sizeof(*v6);
  } else {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(hp->port));
    if (!hp->host.empty()) inet_pton(AF_INET, hp->host.c_str(), &v4->sin_addr);
    len = sizeof(*v4);
  }
  const std::string where = "listen on " + std::string(addr);
  UniqueFd fd(socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return Fail(where, errno);
  const int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));  // as civetweb does
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) == 0) return {};
  const int err = errno;
  switch (err) {
    case EADDRINUSE:
      return Fail(where + ": the port is in use; choose another with --web.listen-address", err);
    case EADDRNOTAVAIL:
      return Fail(where + ": no network interface of this host has that address", err);
    default:
      return Fail(where, err);
  }
}

Result<std::unique_ptr<HttpServer>> HttpServer::Start(
    const HttpOptions& options, std::weak_ptr<prometheus::Collectable> metrics,
    std::map<std::string, HttpHandler> routes) {
  auto ports = CivetListeningPorts(options.listen_address);
  if (!ports) return std::unexpected(ports.error());
  if (options.telemetry_path.empty() || options.telemetry_path.front() != '/') {
    return Fail("--web.telemetry-path '" + options.telemetry_path + "': must start with /");
  }
  std::unique_ptr<HttpServer> s(new HttpServer());
  s->routes_ = std::move(routes);
  s->telemetry_path_ = options.telemetry_path;
  s->web_ = std::make_shared<WebConfigWatcher>(options.web_config_file, options.web_config);
  s->http_metrics_ = std::make_shared<HttpMetrics>(s->web_);
  auto ms = [](double seconds) { return std::to_string(std::llround(seconds * 1000)); };
  std::vector<std::string> civet{
      "num_threads", std::to_string(options.max_connections),
      "connection_queue", "64",
      "listen_backlog", "256",
      "request_timeout_ms", ms(options.read_timeout_seconds),
      "enable_keep_alive", options.idle_timeout_seconds > 0 ? "yes" : "no",
      "keep_alive_timeout_ms", ms(options.idle_timeout_seconds),
      "max_request_size", "8192",
      // Headers and body go out in separate writes; without this, keep-alive
      // clients wait for a delayed ACK between them.
      "tcp_nodelay", "1"};
  std::string listening = *ports;
  if (options.web_config.tls.enabled()) {
    if (auto ok = LoadTlsLibraries(options.tls_compat_dir); !ok) return std::unexpected(ok.error());
    s->tls_ = std::make_unique<TlsServer>(s->web_);
    // Fails here, with the reason, rather than at the first handshake.
    if (auto m = LoadTlsMaterial(options.web_config.tls); !m) return std::unexpected(m.error());
    listening += "s";
  }
  civet.insert(civet.end(), {"listening_ports", listening});
  try {
    t_starting = s.get();
    s->exposer_ = std::make_unique<prometheus::Exposer>(civet, &Callbacks());
    t_starting = nullptr;
  } catch (const std::exception& e) {
    t_starting = nullptr;
    return Fail("listen on " + options.listen_address + ": " + e.what());
  }
  s->exposer_->RegisterCollectable(metrics, options.telemetry_path);
  s->exposer_->RegisterCollectable(s->http_metrics_, options.telemetry_path);
  auto bound = s->exposer_->GetListeningPorts();
  if (bound.empty()) return Fail("listen on " + options.listen_address + ": no port bound");
  s->port_ = bound.front();
  const std::string host(options.listen_address.substr(0, options.listen_address.rfind(':')));
  s->host_ = host.size() > 1 && host.front() == '[' ? host.substr(1, host.size() - 2) : host;
  return s;
}

void HttpServer::Registered(const mg_context* ctx) {
  ctx_ = ctx;
  std::lock_guard lock(g_servers_mu);
  g_servers[ctx] = this;
}

bool HttpServer::InitTls(void* ssl_ctx) { return tls_ && tls_->InitContext(ssl_ctx); }

HttpServer::~HttpServer() {
  std::atomic<bool> stopped{false};
  std::thread poker([&] {
    while (!stopped) {
      PokeListener(host_, port_);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  exposer_.reset();
  stopped = true;
  poker.join();
  std::lock_guard lock(g_servers_mu);
  if (auto it = g_servers.find(ctx_); it != g_servers.end() && it->second == this) g_servers.erase(it);
}

const HttpHandler* HttpServer::Route(const std::string& path) const {
  auto it = routes_.find(path);
  return it == routes_.end() ? nullptr : &it->second;
}

int HttpServer::HandleRequest(mg_connection* conn) {
  const mg_request_info* ri = mg_get_request_info(conn);
  const std::string_view method = ri->request_method ? ri->request_method : "";
  const std::string path = ri->local_uri ? ri->local_uri : "";
  const bool head = method == "HEAD";
  const bool has_body = ri->content_length > 0 || mg_get_header(conn, "Transfer-Encoding") != nullptr;
  auto reply = [&](Reply r) {
    r.close = r.close || has_body;
    Send(conn, r, head);
    return r.status;
  };
  const bool known = path == telemetry_path_ || routes_.count(path) > 0;

  // Probes answer without credentials and before any limit: they reveal
  // only that the process runs, and must keep answering under load.
  if (path != "/healthz" && path != "/readyz") {
    auto web = web_->Current();
    if (!web) {
      ++http_metrics_->config_errors;
      return reply({500, kText, "the web config does not load; see the exporter's log\n", {}, true});
    }
    if (const auto& limit = (*web)->rate_limit; limit && !limit->Take()) {
      ++http_metrics_->rate_limited;
      return reply({429, kText, "too many requests\n", {{"Retry-After", "1"}}});
    }
    if (method != "OPTIONS") {
      const AuthResult a = (*web)->auth->Check(mg_get_header(conn, "Authorization"));
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
  if (has_body) return reply({400, kText, "no endpoint takes a request body\n", {}});
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
  // civetweb drops a request for "*" without an answer; answer it here,
  // where it still holds the request and the socket.
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
