#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "exporter/common/result.h"
#include "exporter/config/web_config.h"
#include "exporter/http/web_config.h"

namespace execflow {

// Makes civetweb's TLS work and checks it. Debian 12's civetweb 1.15 dlopens "libssl.so"
// and "libcrypto.so" and needs SSL_get_peer_certificate, gone in OpenSSL 3. execflow
// ships two libraries of those sonames (openssl3_compat.c): the first defines that
// symbol, both load the real OpenSSL 3. Loaded here first (RTLD_GLOBAL), civetweb's
// dlopen() finds them; then civetweb's own TLS start-up runs, checking what it resolved.
// `compat_dir` empty: ../lib/execflow, then lib/execflow, next to the executable.
Result<void> LoadTlsLibraries(const std::string& compat_dir = "");

// PEM text into what OpenSSL uses; errors name `what` ("cert_file /x.crt").
struct TlsMaterial;
Result<std::shared_ptr<const TlsMaterial>> LoadTlsMaterial(const TlsServerConfig& tls);

// The server's TLS settings from the web config (certificate, key, client CA and
// auth type, versions, cipher suites, curves), checked at each handshake and
// rebuilt when it or a file it names changes, as exporter-toolkit does.
class TlsServer {
 public:
  // `on_handshake` runs on a connection's worker as its handshake starts, before any
  // read, with the connection's socket.
  TlsServer(std::shared_ptr<WebConfigWatcher> watcher, std::function<void(int fd)> on_handshake = {})
      : watcher_(std::move(watcher)), on_handshake_(std::move(on_handshake)) {}
  // civetweb's init_ssl: configures its SSL_CTX; true on success.
  bool InitContext(void* ssl_ctx);
  // Settings for one handshake (null when the current config cannot be served).
  std::shared_ptr<const TlsMaterial> ForHandshake();
  void HandshakeStarted(int fd) const {
    if (on_handshake_) on_handshake_(fd);
  }

 private:
  std::shared_ptr<WebConfigWatcher> watcher_;
  const std::function<void(int fd)> on_handshake_;
  std::mutex mu_;
  std::shared_ptr<const WebSettings> settings_;  // what material_ was built from
  std::vector<FileSignature> files_;
  std::shared_ptr<const TlsMaterial> material_;
  std::string error_;
};

}  // namespace execflow
