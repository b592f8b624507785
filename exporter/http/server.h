#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include <prometheus/collectable.h>

#include "exporter/bpf/handles.h"
#include "exporter/bpf/result.h"
#include "exporter/http/auth.h"

namespace prometheus {
class Exposer;
}

namespace execflow {

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

// Gets the query string (without '?').
using HttpHandler = std::function<HttpResponse(std::string_view query)>;

struct HttpOptions {
  std::string listen_address = ":9741";  // ":PORT", "HOST:PORT", "[V6]:PORT"; port 0 picks one
  std::string telemetry_path = "/metrics";
  int threads = 4;
  // From --web.config.file: TLS when both are set, basic auth when users are.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::map<std::string, std::string> basic_auth_users;
};

// ":9741" -> "9741", "127.0.0.1:0" -> "127.0.0.1:0", "[::1]:9741" -> "[::1]:9741"
// (civetweb's listening_ports syntax); an error names the bad address.
Result<std::string> CivetListeningPorts(std::string_view listen_address);

// Whether civetweb can serve TLS with the OpenSSL installed here.
Result<void> CheckTlsSupport();

// prometheus-cpp's Exposer serves the telemetry path; every other route is
// answered from civetweb's begin_request callback, which the Exposer lets us set.
class HttpServer {
 public:
  static Result<std::unique_ptr<HttpServer>> Start(
      const HttpOptions& options, std::weak_ptr<prometheus::Collectable> metrics,
      std::map<std::string, HttpHandler> routes);
  ~HttpServer();  // stops serving and waits for in-flight requests

  int port() const { return port_; }
  // The handler of a path, or null (then prometheus-cpp or civetweb answer).
  const HttpHandler* Route(const std::string& path) const;
  BasicAuth& auth() const { return *auth_; }

 private:
  HttpServer() = default;
  std::map<std::string, HttpHandler> routes_;
  std::unique_ptr<BasicAuth> auth_;
  UniqueFd tls_pem_;  // key + certificate, handed to civetweb by /proc/self/fd path
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::string host_;
  int port_ = 0;
};

}  // namespace execflow
