#include "exporter/config/web_config.h"

#include <algorithm>

#include "exporter/config/yaml_section.h"

namespace execflow {
namespace {

// Go's tls.CipherSuites(): the suites exporter-toolkit accepts. The TLS 1.3
// ones are accepted and, as in Go, not configurable.
const std::vector<std::string>& KnownCipherSuites() {
  static const std::vector<std::string> k = {
      "TLS_AES_128_GCM_SHA256",
      "TLS_AES_256_GCM_SHA384",
      "TLS_CHACHA20_POLY1305_SHA256",
      "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
      "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
      "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
      "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
      "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
      "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
      "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
      "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
      "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
      "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
  };
  return k;
}

Section::Handler TlsVersion(int* out) {
  return [out](const YAML::Node& n) -> Result<void> {
    static const std::map<std::string, int> versions = {
        {"TLS10", 0x0301}, {"TLS11", 0x0302}, {"TLS12", 0x0303}, {"TLS13", 0x0304}};
    const std::string s = n.IsScalar() ? n.Scalar() : "";
    auto it = versions.find(s);
    if (it == versions.end()) return Fail("expected one of TLS10, TLS11, TLS12, TLS13, got " + Shown(s));
    *out = it->second;
    return {};
  };
}

// What htpasswd -B writes: $2a$, $2b$ or $2y$, a two-digit cost from 4 to 31
// and 53 characters of bcrypt's base64.
bool IsBcryptHash(const std::string& h) {
  if (h.size() != 60 || h[0] != '$' || h[1] != '2' || h[3] != '$' || h[6] != '$') return false;
  if (h[2] != 'a' && h[2] != 'b' && h[2] != 'y') return false;
  if (h[4] < '0' || h[4] > '9' || h[5] < '0' || h[5] > '9') return false;
  const int cost = (h[4] - '0') * 10 + (h[5] - '0');
  if (cost < 4 || cost > 31) return false;
  return std::all_of(h.begin() + 7, h.end(), [](char c) {
    return c == '.' || c == '/' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9');
  });
}

}  // namespace

namespace {

void TlsKeys(Section* s, TlsServerConfig* t) {
  s->On("cert_file", String(&t->cert_file))
      .On("key_file", String(&t->key_file))
      .On("client_ca_file", String(&t->client_ca_file))
      .On("cert", String(&t->cert, kMaxConfigBytes))
      .On("key", String(&t->key, kMaxConfigBytes))
      .On("client_ca", String(&t->client_ca, kMaxConfigBytes))
      .On("client_auth_type",
          OneOf(&t->client_auth_type, {"NoClientCert", "RequestClientCert", "RequireAnyClientCert",
                                       "RequireClientCert", "VerifyClientCertIfGiven",
                                       "RequireAndVerifyClientCert"}))
      .On("client_allowed_sans", List(&t->client_allowed_sans))
      .On("min_version", TlsVersion(&t->min_version))
      .On("max_version", TlsVersion(&t->max_version))
      .On("cipher_suites", List(&t->cipher_suites, KnownCipherSuites()))
      .On("curve_preferences", List(&t->curve_preferences, {"CurveP256", "CurveP384", "CurveP521", "X25519"}))
      .On("prefer_server_cipher_suites", Bool(&t->prefer_server_cipher_suites));
}

// basic_auth_users: user -> bcrypt hash. The hashes are secrets: never shown.
Section::Handler BasicAuthUsers(std::map<std::string, std::string>* users) {
  return [users](const YAML::Node& n) -> Result<void> {
    if (n.IsNull()) return {};
    if (!n.IsMap()) return Fail("expected a mapping of user: bcrypt hash");
    for (const auto& kv : n) {
      const std::string user = kv.first.IsScalar() ? kv.first.Scalar() : "";
      // Basic auth splits user and password at the first ':'; control
      // bytes are refused in credentials, so such a user could never log in.
      const bool usable = !user.empty() && user.size() <= 256 && user.find(':') == std::string::npos &&
                          std::none_of(user.begin(), user.end(), [](char c) {
                            return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
                          });
      if (!usable) {
        return Fail("user " + Shown(user) + ": a user name is 1 to 256 bytes without ':' or control characters");
      }
      if (users->count(user)) return Fail("user " + Shown(user) + " is listed twice");
      const std::string hash = kv.second.IsScalar() ? kv.second.Scalar() : "";
      if (!IsBcryptHash(hash)) {
        return Fail("user " + Shown(user) + ": expected a bcrypt hash (htpasswd -nBC 10 " + user + ")");
      }
      // Every uncached check, and the dummy hash made at each (re)load,
      // costs 2^cost rounds: 31 is valid bcrypt and would hang both.
      constexpr int kMaxBcryptCost = 17;  // htpasswd -B's own maximum
      if (const int cost = (hash[4] - '0') * 10 + (hash[5] - '0'); cost > kMaxBcryptCost) {
        return Fail("user " + Shown(user) + ": bcrypt cost " + std::to_string(cost) + " is above " +
                    std::to_string(kMaxBcryptCost) + ", the most htpasswd makes (each check would take 2^" +
                    std::to_string(cost) + " rounds); hash the password again with htpasswd -nBC 10 " + user);
      }
      (*users)[user] = hash;
    }
    return {};
  };
}

// exporter-toolkit's rules (web/tls_config.go), with its words where it has them.
Result<void> CheckTls(TlsServerConfig& t, bool present, const std::string& where) {
  const bool any = !t.cert_file.empty() || !t.cert.empty() || !t.key_file.empty() || !t.key.empty() ||
                   !t.client_ca_file.empty() || !t.client_ca.empty();
  if (present || any) {
    if (t.cert_file.empty() && t.cert.empty()) return Fail(where + "missing one of cert or cert_file");
    if (t.key_file.empty() && t.key.empty()) return Fail(where + "missing one of key or key_file");
  }
  if (!t.cert_file.empty() && !t.cert.empty()) return Fail(where + "cert and cert_file are exclusive");
  if (!t.key_file.empty() && !t.key.empty()) return Fail(where + "key and key_file are exclusive");
  if (!t.client_ca_file.empty() && !t.client_ca.empty()) {
    return Fail(where + "client_ca and client_ca_file are exclusive");
  }
  if (t.client_auth_type == "RequireClientCert") t.client_auth_type = "RequireAnyClientCert";
  const bool ca = !t.client_ca_file.empty() || !t.client_ca.empty();
  if (ca && t.client_auth_type == "NoClientCert") {
    return Fail(where + "a client CA is configured but client_auth_type is NoClientCert");
  }
  if (!ca && (t.client_auth_type == "RequireAndVerifyClientCert" || t.client_auth_type == "VerifyClientCertIfGiven")) {
    return Fail(where + "client_auth_type " + t.client_auth_type + " needs client_ca_file");
  }
  if (!t.client_allowed_sans.empty() && t.client_auth_type != "RequireAnyClientCert" &&
      t.client_auth_type != "RequireAndVerifyClientCert") {
    return Fail(where + "client_allowed_sans requires client_auth_type to be one of "
                        "RequireAnyClientCert or RequireAndVerifyClientCert");
  }
  if (t.min_version > t.max_version) return Fail(where + "min_version is above max_version");
  return {};
}

}  // namespace

Result<WebConfig> ParseWebConfig(std::string_view yaml, const std::string& file_name) {
  WebConfig w;
  TlsServerConfig& t = w.tls;
  const std::string f = ShownPath(file_name);
  bool tls_present = false;
  Section tls(f, "tls_server_config");
  TlsKeys(&tls, &t);
  bool http2 = true;
  Section http(f, "http_server_config");
  // execflow serves HTTP/1.1 only; http2 is accepted so toolkit files load.
  http.On("http2", Bool(&http2));
  std::string interval = "0s";
  Section rate(f, "rate_limit");
  rate.On("interval", String(&interval, 32)).On("burst", Uint(&w.rate_limit_burst, 0, 1000000));
  Section top(f, "");
  top.On("tls_server_config",
         [&](const YAML::Node& n) {
           tls_present = n && !n.IsNull();
           return tls.Parse(n);
         })
      .On("http_server_config", Nested(http))
      .On("rate_limit", Nested(rate))
      .On("basic_auth_users", BasicAuthUsers(&w.basic_auth_users));
  auto root = LoadYaml(yaml, file_name);
  if (!root) return std::unexpected(root.error());
  if (auto ok = top.Parse(*root); !ok) return std::unexpected(ok.error());

  auto interval_s = ParseDuration(interval);
  if (!interval_s) return Fail(f + ": rate_limit.interval: " + interval_s.error().message);
  w.rate_limit_interval_seconds = *interval_s;
  if (w.rate_limit_interval_seconds > 0 && w.rate_limit_burst == 0) {
    return Fail(f + ": rate_limit: burst must be at least 1 when interval is set");
  }
  if (auto ok = CheckTls(t, tls_present, f + ": tls_server_config: "); !ok) return std::unexpected(ok.error());
  t.cert_file = JoinDir(file_name, t.cert_file);
  t.key_file = JoinDir(file_name, t.key_file);
  t.client_ca_file = JoinDir(file_name, t.client_ca_file);
  return w;
}

Result<WebConfig> LoadWebConfigFile(const std::string& path) {
  auto text = ReadConfigFile("web config", path);
  if (!text) return std::unexpected(text.error());
  return ParseWebConfig(*text, path);
}

}  // namespace execflow
