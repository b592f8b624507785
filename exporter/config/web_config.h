#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "exporter/common/result.h"

namespace execflow {

// --web.config.file in exporter-toolkit's format (its docs/web-configuration.md):
// TLS, bcrypt basic auth, a request rate limit. File names are relative to its folder.
struct TlsServerConfig {
  std::string cert_file;  // PEM files ...
  std::string key_file;
  std::string client_ca_file;
  std::string cert;  // ... or the PEM text inline
  std::string key;
  std::string client_ca;
  // NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven,
  // RequireAndVerifyClientCert (Go's tls.ClientAuthType names).
  std::string client_auth_type = "NoClientCert";
  std::vector<std::string> client_allowed_sans;
  int min_version = 0x0303;  // TLS 1.2, as the wire spells it
  int max_version = 0x0304;  // TLS 1.3
  std::vector<std::string> cipher_suites;  // IANA (= Go) names, TLS 1.2 and below
  std::vector<std::string> curve_preferences;  // CurveP256, CurveP384, CurveP521, X25519
  bool prefer_server_cipher_suites = true;

  bool enabled() const { return !cert_file.empty() || !cert.empty(); }
};

struct WebConfig {
  TlsServerConfig tls;
  std::map<std::string, std::string> basic_auth_users;  // user -> bcrypt hash
  double rate_limit_interval_seconds = 0;  // 0: no rate limit
  uint32_t rate_limit_burst = 0;
};
Result<WebConfig> ParseWebConfig(std::string_view yaml, const std::string& file_name);
Result<WebConfig> LoadWebConfigFile(const std::string& path);

}  // namespace execflow
