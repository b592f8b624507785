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
#include <thread>
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
  // --web.listen-address: ":PORT", "HOST:PORT", "[V6]:PORT" (port 0 picks one).
  std::vector<std::string> listen_addresses = {":9741"};
  // --web.systemd-socket (SystemdSockets()): replace listen_addresses, served the same way.
  std::vector<UniqueFd> systemd_sockets;
  std::string telemetry_path = "/metrics";
  // Workers; each connection holds one from first byte to last, the rest wait in the
  // accept queue. One in eight is kept free for new connections (WaitingConnections).
  int max_connections = 256;
  // For a client to send its request head, and to take each write (not collection time).
  double read_timeout_seconds = 5;
  // A kept-alive connection may idle this long between requests; 0: no keep-alive.
  double idle_timeout_seconds = 2;
  // --web.config.file (re-read when it changes) and its contents at start-up.
  std::string web_config_file;
  WebConfig web_config;
  std::string tls_compat_dir;  // empty: next to the executable (tests set it)
  // Clock of the rate limit and failed-login buckets (tests stop it).
  std::function<std::chrono::steady_clock::time_point()> clock = std::chrono::steady_clock::now;
};

// ":9741" -> "9741", "[::1]:9741" -> "[::1]:9741" (civetweb's listening_ports). IPv6 is
// refused when civetweb lacks it, as Debian 12's does (it would only fail to start).
Result<std::string> CivetListeningPorts(std::string_view listen_address);

// Whether the civetweb linked serves IPv6 (mg_check_feature(8)).
bool CivetwebHasIpv6();

// Listens on every address at once, before anything is attached, to say why one
// cannot be used (civetweb only says it failed): in use (by another process or an
// earlier address), not on this host, or a privileged port (capabilities are dropped).
Result<void> CheckCanListen(const std::vector<std::string>& listen_addresses);

class HttpMetrics;

// prometheus-cpp's Exposer serves GET on the telemetry path; begin_request first
// does authentication (503 until this server is registered: nothing unauthenticated),
// the rate limit, methods (HEAD where GET works, OPTIONS, else 405 with Allow), routes.
class HttpServer {
 public:
  static Result<std::unique_ptr<HttpServer>> Start(
      const HttpOptions& options, std::weak_ptr<prometheus::Collectable> metrics,
      std::map<std::string, HttpHandler> routes);
  ~HttpServer();  // stops serving and waits for in-flight requests

  // The port of the first listener (first address or first systemd socket).
  int port() const { return port_; }
  // Where it listens, in order: "0.0.0.0:9741", "[::1]:9741".
  const std::vector<std::string>& addresses() const { return addresses_; }
  const HttpHandler* Route(const std::string& path) const;
  bool tls() const { return tls_ != nullptr; }
  // Workers waiting now; connections closed for waiting longest (tests wait on these).
  size_t waiting_connections() const { return waiting_->waiting(); }
  uint64_t waiting_connections_closed() const { return waiting_->closed(); }

  // civetweb callbacks (static functions in server.cc forward to these).
  void HandleNewConnection(const mg_connection* conn);
  int HandleRequest(mg_connection* conn);
  void HandleEndRequest();
  void HandleClose(mg_connection* conn);
  void HandleTlsHandshake(int fd);
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
  std::thread retry_closing_;  // WaitingConnections::RetryUntilStopped
  std::unique_ptr<TlsServer> tls_;
  std::shared_ptr<HttpMetrics> http_metrics_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  const mg_context* ctx_ = nullptr;
  // While Start() builds the Exposer: systemd sockets for the placeholders, and the result.
  const std::vector<UniqueFd>* adopt_ = nullptr;
  Result<void> adopted_;
  std::vector<std::string> addresses_;
  int port_ = 0;
  // civetweb serves before Start() registered the metrics (a socket-activated
  // service's first request is queued already): requests wait for kOpen, 503 on kClosed.
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
