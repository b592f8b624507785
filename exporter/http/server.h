#pragma once

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <prometheus/collectable.h>

#include "exporter/common/unique_fd.h"
#include "exporter/common/result.h"
#include "exporter/config/web_config.h"
#include "exporter/http/tls.h"
#include "exporter/http/waiting.h"
#include "exporter/http/web_config.h"

namespace prometheus {
class Exposer;
}
struct mg_connection;
struct mg_context;

namespace execflow {

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

// Gets the query string (without '?').
using HttpHandler = std::function<HttpResponse(std::string_view query)>;

struct HttpOptions {
  // --web.listen-address: ":PORT", "HOST:PORT", "[V6]:PORT" (port 0 picks one);
  // the server binds each. Unused when systemd_sockets is not empty.
  std::vector<std::string> listen_addresses = {":9741"};
  // --web.systemd-socket: listening sockets systemd passed (SystemdSockets()),
  // served instead of listen_addresses, by the same workers with the same
  // limits, timeouts, TLS and authentication.
  std::vector<UniqueFd> systemd_sockets;
  std::string telemetry_path = "/metrics";
  // civetweb serves each connection on a worker thread of its own, from the
  // first header byte to the last response byte: this many clients are served
  // at once, and more wait in the accept queue. One worker in eight is kept
  // for new connections: when the others all wait for slow clients, the
  // connection that has waited longest is closed (WaitingConnections).
  int max_connections = 256;
  // A client has this long to send its request line and headers (and to take
  // each write of the response); collecting the metrics is not counted.
  double read_timeout_seconds = 5;
  // A kept-alive connection may idle this long between requests; 0: no keep-alive.
  double idle_timeout_seconds = 2;
  // --web.config.file (re-read when it changes) and its contents at start-up.
  std::string web_config_file;
  WebConfig web_config;
  std::string tls_compat_dir;  // empty: next to the executable (tests set it)
  // The time the rate limit and the failed-login buckets are refilled to
  // (tests stop it).
  std::function<std::chrono::steady_clock::time_point()> clock = std::chrono::steady_clock::now;
};

// ":9741" -> "9741", "127.0.0.1:0" -> "127.0.0.1:0", "[::1]:9741" -> "[::1]:9741"
// (civetweb's listening_ports syntax); an error names the bad address. IPv6
// addresses are refused when civetweb is built without IPv6, as Debian 12's
// is (it would fail to start on them, and only say that it failed).
Result<std::string> CivetListeningPorts(std::string_view listen_address);

// Whether the civetweb linked serves IPv6 (mg_check_feature(8)).
bool CivetwebHasIpv6();

// Binds and listens on every address at once to say why one cannot be used
// (in use, by another process or by an earlier address of the list; not an
// address of this host; a privileged port, which execflow cannot bind once it
// has dropped its capabilities) before anything is attached; civetweb alone
// would only say that it failed.
Result<void> CheckCanListen(const std::vector<std::string>& listen_addresses);

class HttpMetrics;

// prometheus-cpp's Exposer serves GET on the telemetry path; everything else
// is answered from civetweb's begin_request callback first: authentication
// (nothing is served before it is in force: a request civetweb accepts
// before this server is registered gets 503), the rate limit, methods
// (HEAD wherever GET works, OPTIONS, 405 with Allow otherwise) and the routes.
class HttpServer {
 public:
  static Result<std::unique_ptr<HttpServer>> Start(
      const HttpOptions& options, std::weak_ptr<prometheus::Collectable> metrics,
      std::map<std::string, HttpHandler> routes);
  ~HttpServer();  // stops serving and waits for in-flight requests

  // The port of the first listener (of the first address, or the first
  // systemd socket).
  int port() const { return port_; }
  // Where it listens, in order: "0.0.0.0:9741", "[::1]:9741".
  const std::vector<std::string>& addresses() const { return addresses_; }
  // The handler of a path, or null.
  const HttpHandler* Route(const std::string& path) const;
  bool tls() const { return tls_ != nullptr; }
  // Workers waiting for a client now, and connections closed so far for
  // waiting longest while too many did (tests wait on these).
  size_t waiting_connections() const { return waiting_->waiting(); }
  uint64_t waiting_connections_closed() const { return waiting_->closed(); }

  // civetweb callbacks (static functions in server.cc forward to these).
  void HandleNewConnection();
  int HandleRequest(mg_connection* conn);
  void HandleEndRequest();
  void HandleClose(mg_connection* conn);
  void HandleTlsHandshake();
  bool InitTls(void* ssl_ctx);
  void Registered(const mg_context* ctx);
  void MasterThread(bool running);
  void WorkerExits();

 private:
  HttpServer() = default;
  std::map<std::string, HttpHandler> routes_;
  std::string telemetry_path_;
  std::function<std::chrono::steady_clock::time_point()> clock_;
  std::shared_ptr<WebConfigWatcher> web_;
  std::shared_ptr<WaitingConnections> waiting_;
  std::unique_ptr<TlsServer> tls_;
  std::shared_ptr<HttpMetrics> http_metrics_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  const mg_context* ctx_ = nullptr;
  // Set while Start() builds the Exposer: the systemd sockets to put in
  // place of civetweb's placeholders, and how that went.
  const std::vector<UniqueFd>* adopt_ = nullptr;
  Result<void> adopted_;
  std::vector<std::string> addresses_;
  int port_ = 0;
  // civetweb serves from the moment the Exposer starts it, before Start()
  // has registered the metrics; a socket-activated service's first request
  // is already queued then. Requests wait until Start() opens the server, or
  // get a 503 if it stops before.
  enum class Gate { kStarting, kOpen, kClosed };
  std::mutex gate_mu_;
  std::condition_variable gate_cv_;
  Gate gate_ = Gate::kStarting;
  void SetGate(Gate g);
  // civetweb's master (accepting) thread, while it runs; see Wake().
  std::mutex master_mu_;
  bool master_running_ = false;
  pthread_t master_{};
  void Wake();
};

}  // namespace execflow
