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

// Makes civetweb's TLS work and proves it. Debian 12's civetweb 1.15 dlopens
// "libssl.so" and "libcrypto.so" and needs SSL_get_peer_certificate, which
// OpenSSL 3 dropped. execflow ships two small libraries with exactly those
// sonames (exporter/http/openssl3_compat.c): the first defines that one
// symbol and both pull in the real OpenSSL 3. Loaded here, RTLD_GLOBAL,
// before civetweb looks, they are what its dlopen() finds. Then civetweb's
// own initialisation is run, so the check is of the libraries civetweb
// resolved, not of OpenSSL on its own. `compat_dir` empty: next to the
// executable (../lib/execflow, then lib/execflow).
Result<void> LoadTlsLibraries(const std::string& compat_dir = "");

// PEM text into what OpenSSL uses; errors name `what` ("cert_file /x.crt").
struct TlsMaterial;
Result<std::shared_ptr<const TlsMaterial>> LoadTlsMaterial(const TlsServerConfig& tls);

// Builds the server's TLS settings from the web config at every handshake:
// certificate and key, client CA and client_auth_type, versions, cipher
// suites and curves, re-read when the web config or a file it names
// changes (exporter-toolkit reads them per connection too).
class TlsServer {
 public:
  // `on_handshake` is called on the worker of each connection whose handshake
  // starts, before a byte of it is read.
  TlsServer(std::shared_ptr<WebConfigWatcher> watcher, std::function<void()> on_handshake = {})
      : watcher_(std::move(watcher)), on_handshake_(std::move(on_handshake)) {}
  // civetweb's init_ssl: configures its SSL_CTX; true on success.
  bool InitContext(void* ssl_ctx);
  // Settings for one handshake (null when the current config cannot be served).
  std::shared_ptr<const TlsMaterial> ForHandshake();
  void HandshakeStarted() const {
    if (on_handshake_) on_handshake_();
  }

 private:
  std::shared_ptr<WebConfigWatcher> watcher_;
  const std::function<void()> on_handshake_;
  std::mutex mu_;
  std::shared_ptr<const WebSettings> settings_;  // what material_ was built from
  std::vector<FileSignature> files_;
  std::shared_ptr<const TlsMaterial> material_;
  std::string error_;
};

}  // namespace execflow
