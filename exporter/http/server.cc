#include "exporter/http/server.h"

#include <CivetServer.h>
#include <civetweb.h>
#include <prometheus/exposer.h>

#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <sstream>
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
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 503: return "Service Unavailable";
    default: return "Error";
  }
}

void Write(mg_connection* conn, const HttpResponse& r, bool head, const char* extra_headers = "") {
  mg_printf(conn,
            "HTTP/1.1 %d %s\r\n%sContent-Type: %s\r\nContent-Length: %zu\r\n"
            "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
            r.status, StatusText(r.status), extra_headers, r.content_type.c_str(), r.body.size());
  if (!head) mg_write(conn, r.body.data(), r.body.size());
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
  const std::string path = ri->local_uri;
  const bool head = std::string_view(ri->request_method) == "HEAD";
  // Probes stay open so kubelet and load balancers need no credentials;
  // they reveal nothing but liveness. Everything else, /metrics included
  // (prometheus-cpp serves it after us), needs them when users are set.
  if (path != "/healthz" && path != "/readyz" &&
      !server->auth().Allows(mg_get_header(conn, "Authorization"))) {
    Write(conn, {401, "text/plain; charset=utf-8", "unauthorized\n"}, head,
          "WWW-Authenticate: Basic realm=\"execflow\"\r\n");
    return 401;
  }
  const HttpHandler* handler = server->Route(path);
  if (!handler) return 0;
  HttpResponse resp{405, "text/plain; charset=utf-8", "method not allowed\n"};
  if (head || std::string_view(ri->request_method) == "GET") {
    resp = (*handler)(ri->query_string ? ri->query_string : "");
  }
  Write(conn, resp, head);
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

Result<void> CheckTlsSupport() {
  // civetweb dlopens libssl.so and resolves its functions by name.
  void* ssl = dlopen("libssl.so", RTLD_LAZY | RTLD_LOCAL);
  if (!ssl) {
    return Fail("TLS needs libssl.so at run time (Debian: apt-get install libssl-dev)");
  }
  // Debian 12's civetweb 1.15 calls SSL_get_peer_certificate, which OpenSSL 3
  // no longer exports: the first TLS request would call a null pointer.
  const bool usable = dlsym(ssl, "SSL_get_peer_certificate") != nullptr;
  dlclose(ssl);
  if (!usable) {
    return Fail("TLS: this civetweb resolves SSL_get_peer_certificate, which the installed OpenSSL 3 "
                "does not export, and would crash on the first TLS request; terminate TLS in front of "
                "execflow (kube-rbac-proxy, stunnel, nginx) and keep basic_auth_users, or use a "
                "civetweb built for OpenSSL 3");
  }
  return {};
}

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
  s->auth_ = std::make_unique<BasicAuth>(options.basic_auth_users);
  std::vector<std::string> civet_options{"num_threads", std::to_string(options.threads),
                                         "enable_keep_alive", "no", "request_timeout_ms", "10000"};
  std::string listening = *ports;
  if (!options.tls_cert_file.empty()) {
    if (auto ok = CheckTlsSupport(); !ok) return std::unexpected(ok.error());
    // civetweb wants key and certificate in one PEM file; a memfd keeps the
    // private key off disk.
    std::string pem;
    for (const auto& f : {options.tls_key_file, options.tls_cert_file}) {
      std::ifstream in(f);
      if (!in) return Fail("read TLS file " + f, errno);
      std::stringstream ss;
      ss << in.rdbuf();
      pem += ss.str() + "\n";
    }
    s->tls_pem_.Reset(memfd_create("execflow-tls", MFD_CLOEXEC));
    if (!s->tls_pem_ || write(s->tls_pem_.get(), pem.data(), pem.size()) != static_cast<ssize_t>(pem.size())) {
      return Fail("hold TLS key in memory", errno);
    }
    listening += "s";
    civet_options.insert(civet_options.end(),
                         {"ssl_certificate", "/proc/self/fd/" + std::to_string(s->tls_pem_.get())});
  }
  civet_options.insert(civet_options.end(), {"listening_ports", listening});
  static const CivetCallbacks callbacks = [] {
    CivetCallbacks cb{};
    cb.begin_request = BeginRequest;
    return cb;
  }();
  try {
    s->exposer_ = std::make_unique<prometheus::Exposer>(civet_options, &callbacks);
  } catch (const std::exception& e) {
    return Fail("listen on " + options.listen_address + ": " + e.what() +
                (options.tls_cert_file.empty()
                     ? " (is the port in use? choose another with --web.listen-address)"
                     : " (is the port in use, or the TLS key/certificate invalid?)"));
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

const HttpHandler* HttpServer::Route(const std::string& path) const {
  auto it = routes_.find(path);
  return it == routes_.end() ? nullptr : &it->second;
}

}  // namespace execflow
