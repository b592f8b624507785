#include "exporter/http/server.h"

#include <CivetServer.h>
#include <civetweb.h>
#include <prometheus/exposer.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace execflow {
namespace {

// civetweb calls begin_request with no pointer of ours (the Exposer owns the
// server's user data), so servers are found by the port a request came in on.
std::mutex g_servers_mu;
std::map<int, const HttpServer*> g_servers;

const char* StatusText(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 503: return "Service Unavailable";
    default: return "Error";
  }
}

int BeginRequest(mg_connection* conn) {
  const mg_request_info* ri = mg_get_request_info(conn);
  const HttpServer* server = nullptr;
  {
    std::lock_guard lock(g_servers_mu);
    auto it = g_servers.find(ri->server_port);
    if (it != g_servers.end()) server = it->second;
  }
  if (!server || !ri->local_uri) return 0;
  HttpResponse resp;
  if (!server->Handle(ri->local_uri, ri->query_string ? ri->query_string : "", &resp)) return 0;
  const bool head = std::string_view(ri->request_method) == "HEAD";
  if (!head && std::string_view(ri->request_method) != "GET") {
    resp = {405, "text/plain; charset=utf-8", "method not allowed\n"};
  }
  mg_printf(conn,
            "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
            "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
            resp.status, StatusText(resp.status), resp.content_type.c_str(), resp.body.size());
  if (!head) mg_write(conn, resp.body.data(), resp.body.size());
  return resp.status;
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

}  // namespace

Result<std::string> CivetListeningPorts(std::string_view addr) {
  auto bad = [&](const std::string& why) {
    return Fail("--web.listen-address '" + std::string(addr) + "': " + why);
  };
  auto colon = addr.rfind(':');
  if (colon == std::string_view::npos) return bad("expected [HOST]:PORT");
  std::string_view host = addr.substr(0, colon), port = addr.substr(colon + 1);
  if (port.empty() || port.size() > 5) return bad("bad port");
  for (char c : port) {
    if (c < '0' || c > '9') return bad("bad port");
  }
  if (std::stoul(std::string(port)) > 65535) return bad("port out of range");
  if (host.empty()) return std::string(port);
  if (host.front() == '[' && host.back() != ']') return bad("unterminated IPv6 address");
  if (host.front() != '[' && host.find(':') != std::string_view::npos) {
    return bad("IPv6 addresses go in brackets: [::1]:9741");
  }
  return std::string(addr);
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
  static const CivetCallbacks callbacks = [] {
    CivetCallbacks cb{};
    cb.begin_request = BeginRequest;
    return cb;
  }();
  try {
    s->exposer_ = std::make_unique<prometheus::Exposer>(
        std::vector<std::string>{"listening_ports", *ports, "num_threads",
                                 std::to_string(options.threads), "enable_keep_alive", "no",
                                 "request_timeout_ms", "10000"},
        &callbacks);
  } catch (const std::exception& e) {
    return Fail("listen on " + options.listen_address + ": " + e.what() +
                " (is the port in use? choose another with --web.listen-address)");
  }
  s->exposer_->RegisterCollectable(metrics, options.telemetry_path);
  auto bound = s->exposer_->GetListeningPorts();
  if (bound.empty()) return Fail("listen on " + options.listen_address + ": no port bound");
  s->port_ = bound.front();
  const std::string host(options.listen_address.substr(0, options.listen_address.rfind(':')));
  s->host_ = host.size() > 1 && host.front() == '[' ? host.substr(1, host.size() - 2) : host;
  std::lock_guard lock(g_servers_mu);
  for (int p : bound) g_servers[p] = s.get();
  return s;
}

HttpServer::~HttpServer() {
  {
    std::lock_guard lock(g_servers_mu);
    for (auto it = g_servers.begin(); it != g_servers.end();) {
      it = it->second == this ? g_servers.erase(it) : std::next(it);
    }
  }
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
}

bool HttpServer::Handle(const std::string& path, std::string_view query, HttpResponse* out) const {
  auto it = routes_.find(path);
  if (it == routes_.end()) return false;
  *out = it->second(query);
  return true;
}

}  // namespace execflow
