// HTTPS through Debian's civetweb 1.15 and OpenSSL 3 with execflow's
// compatibility libraries (build/lib/execflow), against a real OpenSSL client.
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <vector>

#include "exporter/http/server.h"
#include "exporter/metrics/families.h"
#include "tests/unit/http_client.h"

namespace execflow {
namespace {

class StaticMetrics : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override {
    auto f = Counter("execflow_execs_total", "Successful execs.");
    AddCounter(f, {{"uid", "0"}}, 7);
    return {f};
  }
};

struct ClientOptions {
  int max_version = 0;
  std::string ciphers;  // TLS 1.2 cipher list
  std::string cert, key;
  ClientOptions& Max(int v) { max_version = v; return *this; }
  ClientOptions& Ciphers(std::string c) { ciphers = std::move(c); return *this; }
  ClientOptions& Cert(std::string c, std::string k) {
    cert = std::move(c);
    key = std::move(k);
    return *this;
  }
};

struct TlsReply {
  bool handshake = false;
  int status = 0;
  std::string body;
  std::string cipher;
  int version = 0;
  std::string server_cn;
};

TlsReply TlsGet(int port, const std::string& path, const ClientOptions& o = {}) {
  TlsReply out;
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (o.max_version) SSL_CTX_set_max_proto_version(ctx, o.max_version);
  if (!o.ciphers.empty()) SSL_CTX_set_cipher_list(ctx, o.ciphers.c_str());
  if (!o.cert.empty()) {
    SSL_CTX_use_certificate_file(ctx, o.cert.c_str(), SSL_FILETYPE_PEM);
    SSL_CTX_use_PrivateKey_file(ctx, o.key.c_str(), SSL_FILETYPE_PEM);
  }
  int fd = ConnectLoopback(port);
  // A bound on hangs: a server that never answers fails the test instead of stalling it.
  const timeval bound{120, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &bound, sizeof(bound));
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  if (SSL_connect(ssl) == 1) {
    const std::string req = "GET " + path + " HTTP/1.0\r\nHost: localhost\r\n\r\n";
    // TLS 1.3 servers check the client certificate after the handshake:
    // a refusal shows as a failed write or read.
    if (SSL_write(ssl, req.data(), static_cast<int>(req.size())) > 0) {
      std::string resp;
      char buf[16384];
      for (int n; (n = SSL_read(ssl, buf, sizeof(buf))) > 0;) resp.append(buf, static_cast<size_t>(n));
      HttpReply r = ParseReply(resp);
      out.handshake = r.status != 0;
      out.status = r.status;
      out.body = r.body;
    }
    out.cipher = SSL_get_cipher_name(ssl);
    out.version = SSL_version(ssl);
    if (X509* peer = SSL_get1_peer_certificate(ssl)) {
      char cn[256] = {};
      X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof(cn));
      out.server_cn = cn;
      X509_free(peer);
    }
  }
  ERR_clear_error();
  SSL_free(ssl);
  close(fd);
  SSL_CTX_free(ctx);
  return out;
}

// A CA, server and client certificates made with the openssl command.
class Tls : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/execflow-tls-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    Run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
        "-keyout ca.key -out ca.crt -subj /CN=test-ca");
    Run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
        "-keyout other-ca.key -out other-ca.crt -subj /CN=other-ca");
    Issue("server", "ca", "/CN=server-one", "IP:127.0.0.1");
    Issue("server2", "ca", "/CN=server-two", "IP:127.0.0.1");
    Issue("client", "ca", "/CN=prometheus", "DNS:prometheus.example");
    Issue("client-other-san", "ca", "/CN=grafana", "DNS:grafana.example");
    Issue("stranger", "other-ca", "/CN=stranger", "DNS:prometheus.example");
    // Static-RSA key exchange needs an RSA certificate.
    Issue("server-rsa", "ca", "/CN=server-rsa", "IP:127.0.0.1", "rsa:2048");
  }
  static void TearDownTestSuite() { std::filesystem::remove_all(dir_); }
  static void Run(const std::string& cmd) {
    ASSERT_EQ(std::system(("cd " + dir_ + " && " + cmd + " >/dev/null 2>&1").c_str()), 0) << cmd;
  }
  static void Issue(const std::string& name, const std::string& ca, const std::string& subject,
                    const std::string& san, const std::string& key = "ec -pkeyopt ec_paramgen_curve:P-256") {
    Run("openssl req -newkey " + key + " -nodes -keyout " + name + ".key -out " + name +
        ".csr -subj " + subject);
    Run("printf 'subjectAltName=" + san + "\\n' > " + name + ".ext && openssl x509 -req -in " + name +
        ".csr -CA " + ca + ".crt -CAkey " + ca + ".key -CAcreateserial -days 2 -out " + name +
        ".crt -extfile " + name + ".ext");
  }
  static std::string P(const std::string& name) { return dir_ + "/" + name; }

  // Starts an HTTPS server whose web config file is `yaml`.
  std::unique_ptr<HttpServer> Start(const std::string& yaml, HttpOptions o = {}) {
    WriteWebConfig(yaml);
    auto wc = LoadWebConfigFile(P("web.yml"));
    EXPECT_TRUE(wc.has_value()) << wc.error().message;
    o.listen_addresses = {"127.0.0.1:0"};
    o.web_config_file = P("web.yml");
    o.web_config = *wc;
    auto s = HttpServer::Start(o, metrics_, {{"/healthz", [](std::string_view) {
                                                return HttpResponse{200, "text/plain", "ok\n"};
                                              }}});
    EXPECT_TRUE(s.has_value()) << s.error().message;
    return s ? std::move(*s) : nullptr;
  }
  void WriteWebConfig(const std::string& yaml) {
    std::ofstream(P("web.yml.new")) << yaml;
    ASSERT_EQ(rename(P("web.yml.new").c_str(), P("web.yml").c_str()), 0);
  }

  static std::string dir_;
  std::shared_ptr<StaticMetrics> metrics_ = std::make_shared<StaticMetrics>();
};
std::string Tls::dir_;

const std::string kServer = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";

TEST_F(Tls, ServesHttpsThroughCivetwebOnOpenSsl3) {
  auto s = Start(kServer);
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(s->tls());
  auto r = TlsGet(s->port(), "/metrics");
  ASSERT_TRUE(r.handshake);
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("execflow_execs_total{uid=\"0\"} 7"), std::string::npos) << r.body;
  EXPECT_EQ(r.server_cn, "server-one");
  EXPECT_EQ(r.version, TLS1_3_VERSION);
  EXPECT_EQ(TlsGet(s->port(), "/healthz").status, 200);
  // Plain HTTP to the TLS port gets no HTTP answer.
  EXPECT_EQ(HttpRequest(s->port(), "/healthz").status, 0);
}

TEST_F(Tls, SystemdSocketsServeHttpsOnly) {
  WriteWebConfig(kServer);
  UniqueFd sock(ListeningSocket());
  ASSERT_TRUE(sock);
  const int port = LocalPort(sock.get());
  HttpOptions o;
  o.web_config_file = P("web.yml");
  o.web_config = *LoadWebConfigFile(P("web.yml"));
  o.systemd_sockets.emplace_back(dup(sock.get()));
  auto s = HttpServer::Start(o, metrics_, {{"/healthz", [](std::string_view) {
                                              return HttpResponse{200, "text/plain", "ok\n"};
                                            }}});
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_TRUE((*s)->tls());
  auto r = TlsGet(port, "/metrics");
  ASSERT_TRUE(r.handshake);
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("execflow_execs_total{uid=\"0\"} 7"), std::string::npos) << r.body;
  EXPECT_EQ(r.server_cn, "server-one");
  EXPECT_EQ(TlsGet(port, "/healthz").body, "ok\n");
  EXPECT_EQ(HttpRequest(port, "/healthz").status, 0);  // plain HTTP gets no answer
}

TEST_F(Tls, MinVersionAndCipherSuites) {
  // Default min_version is TLS12, as in exporter-toolkit.
  auto s = Start(kServer);
  ASSERT_NE(s, nullptr);
  EXPECT_FALSE(TlsGet(s->port(), "/healthz", ClientOptions().Max(TLS1_1_VERSION)).handshake);
  auto v12 = TlsGet(s->port(), "/healthz", ClientOptions().Max(TLS1_2_VERSION));
  EXPECT_EQ(v12.status, 200);
  EXPECT_EQ(v12.version, TLS1_2_VERSION);
  s.reset();

  s = Start(kServer + "  min_version: TLS13\n");
  ASSERT_NE(s, nullptr);
  EXPECT_FALSE(TlsGet(s->port(), "/healthz", ClientOptions().Max(TLS1_2_VERSION)).handshake);
  EXPECT_EQ(TlsGet(s->port(), "/healthz").status, 200);
  s.reset();

  s = Start(kServer + "  max_version: TLS12\n  cipher_suites:\n    - TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\n");
  ASSERT_NE(s, nullptr);
  EXPECT_FALSE(TlsGet(s->port(), "/healthz", ClientOptions().Ciphers("ECDHE-ECDSA-AES256-GCM-SHA384")).handshake);
  auto ok = TlsGet(s->port(), "/healthz",
                   ClientOptions().Ciphers("ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256"));
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.cipher, "ECDHE-ECDSA-AES128-GCM-SHA256");
}

// OpenSSL's default list has static-RSA suites (no forward secrecy) and
// CBC ones; Go's, which exporter-toolkit uses, has neither static RSA nor,
// with ECDHE, anything but AES-GCM, ChaCha20 and the older CBC-SHA1 ones.
TEST_F(Tls, Tls12OffersOnlyForwardSecretAeadSuitesByDefault) {
  const std::string rsa = "tls_server_config:\n  cert_file: server-rsa.crt\n  key_file: server-rsa.key\n";
  auto s = Start(rsa);
  ASSERT_NE(s, nullptr);
  const auto v12 = ClientOptions().Max(TLS1_2_VERSION);
  for (const char* suite : {"AES128-SHA", "AES128-GCM-SHA256", "AES256-GCM-SHA384", "AES256-SHA256",
                            "ECDHE-RSA-AES128-SHA", "ECDHE-RSA-AES256-SHA384", "DHE-RSA-AES128-GCM-SHA256"}) {
    EXPECT_FALSE(TlsGet(s->port(), "/healthz", ClientOptions(v12).Ciphers(suite)).handshake) << suite;
  }
  for (const char* suite : {"ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384",
                            "ECDHE-RSA-CHACHA20-POLY1305"}) {
    auto r = TlsGet(s->port(), "/healthz", ClientOptions(v12).Ciphers(suite));
    EXPECT_EQ(r.status, 200) << suite;
    EXPECT_EQ(r.cipher, suite);
    EXPECT_EQ(r.version, TLS1_2_VERSION);
  }
  // A client that offers everything gets the first forward-secret AEAD suite.
  EXPECT_EQ(TlsGet(s->port(), "/healthz", ClientOptions(v12).Ciphers("ALL")).cipher,
            "ECDHE-RSA-AES128-GCM-SHA256");
  s.reset();

  // cipher_suites still selects exactly what it lists.
  s = Start(rsa + "  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA]\n");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(TlsGet(s->port(), "/healthz", ClientOptions(v12).Ciphers("ECDHE-RSA-AES128-SHA")).status, 200);
  EXPECT_FALSE(TlsGet(s->port(), "/healthz", ClientOptions(v12).Ciphers("ECDHE-RSA-AES128-GCM-SHA256")).handshake);
  EXPECT_FALSE(TlsGet(s->port(), "/healthz", ClientOptions(v12).Ciphers("AES128-SHA")).handshake);
}

// A TLS connection waits for its client from the start of the handshake, so
// clients that never finish one are closed like slow plain-HTTP ones
// (HttpServer.ProbesAndScrapesAreAnsweredWhileMoreSlowClientsThanWorkersWait).
TEST_F(Tls, ClientsThatNeverFinishTheHandshakeDoNotStarveProbes) {
  HttpOptions o;
  o.max_connections = 16;  // 14 may wait, 2 kept for new connections
  o.read_timeout_seconds = 3600;  // civetweb's handshake timeout too
  auto s = Start(kServer, std::move(o));
  ASSERT_NE(s, nullptr);
  std::vector<int> slow;
  for (int i = 0; i < 20; ++i) {
    int fd = ConnectLoopback(s->port());
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(SendAll(fd, std::string("\x16\x03\x01", 3)));  // the start of a ClientHello
    slow.push_back(fd);
  }
  EXPECT_TRUE(WaitFor([&] { return s->waiting_connections_closed() == 6; })) << s->waiting_connections_closed();
  EXPECT_EQ(s->waiting_connections(), 14u);
  EXPECT_EQ(TlsGet(s->port(), "/healthz").status, 200);
  EXPECT_EQ(TlsGet(s->port(), "/healthz").status, 200);
  EXPECT_EQ(s->waiting_connections_closed(), 7u);
  for (int fd : slow) close(fd);
}

TEST_F(Tls, RequireAndVerifyClientCert) {
  auto s = Start(kServer + "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n");
  ASSERT_NE(s, nullptr);
  const int port = s->port();
  EXPECT_FALSE(TlsGet(port, "/healthz").handshake);
  EXPECT_FALSE(TlsGet(port, "/healthz", ClientOptions().Cert(P("stranger.crt"), P("stranger.key"))).handshake);
  auto ok = TlsGet(port, "/metrics", ClientOptions().Cert(P("client.crt"), P("client.key")));
  EXPECT_EQ(ok.status, 200);
  EXPECT_NE(ok.body.find("execflow_execs_total"), std::string::npos);
  // Same over TLS 1.2, where the check is inside the handshake.
  EXPECT_FALSE(TlsGet(port, "/healthz", ClientOptions().Max(TLS1_2_VERSION)).handshake);
  const auto client12 = ClientOptions().Max(TLS1_2_VERSION).Cert(P("client.crt"), P("client.key"));
  EXPECT_EQ(TlsGet(port, "/healthz", client12).status, 200);
  s.reset();

  s = Start(kServer + "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n"
                      "  client_allowed_sans: [prometheus.example]\n");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(TlsGet(s->port(), "/healthz", ClientOptions().Cert(P("client.crt"), P("client.key"))).status, 200);
  EXPECT_FALSE(TlsGet(s->port(), "/healthz",
                      ClientOptions().Cert(P("client-other-san.crt"), P("client-other-san.key"))).handshake);
}

TEST_F(Tls, RequireAnyClientCertTakesAnyCertificate) {
  auto s = Start(kServer + "  client_auth_type: RequireAnyClientCert\n");
  ASSERT_NE(s, nullptr);
  EXPECT_FALSE(TlsGet(s->port(), "/healthz").handshake);
  EXPECT_EQ(TlsGet(s->port(), "/healthz", ClientOptions().Cert(P("stranger.crt"), P("stranger.key"))).status, 200);
}

TEST_F(Tls, CertificateAndSettingsAreReloadedWhenTheyChange) {
  // Files of its own: the other tests read server.crt and server.key in any order.
  Run("cp server.crt rotated.crt && cp server.key rotated.key");
  const std::string config = "tls_server_config:\n  cert_file: rotated.crt\n  key_file: rotated.key\n";
  auto s = Start(config);
  ASSERT_NE(s, nullptr);
  const int port = s->port();
  EXPECT_EQ(TlsGet(port, "/healthz").server_cn, "server-one");
  // A rotated certificate (what cert-manager does) is used at the next handshake.
  Run("cp server2.crt rotated.crt.new && cp server2.key rotated.key && mv rotated.crt.new rotated.crt");
  EXPECT_EQ(TlsGet(port, "/healthz").server_cn, "server-two");
  // So is a changed web config.
  WriteWebConfig(config + "  min_version: TLS13\n");
  EXPECT_FALSE(TlsGet(port, "/healthz", ClientOptions().Max(TLS1_2_VERSION)).handshake);
  // A key that does not match: handshakes are refused until it is fixed.
  Run("cp client.key rotated.key");
  EXPECT_FALSE(TlsGet(port, "/healthz").handshake);
  Run("cp server2.key rotated.key");
  EXPECT_EQ(TlsGet(port, "/healthz").status, 200);
}

TEST_F(Tls, BadMaterialIsAStartUpError) {
  WriteWebConfig("tls_server_config:\n  cert_file: server.crt\n  key_file: client.key\n");
  HttpOptions o;
  o.listen_addresses = {"127.0.0.1:0"};
  o.web_config = *LoadWebConfigFile(P("web.yml"));
  auto s = HttpServer::Start(o, metrics_, {});
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().message, "TLS: the private key does not match the certificate");
  WriteWebConfig("tls_server_config:\n  cert_file: missing.crt\n  key_file: server.key\n");
  o.web_config = *LoadWebConfigFile(P("web.yml"));
  s = HttpServer::Start(o, metrics_, {});
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().message, "read cert_file " + P("missing.crt") + ": No such file or directory");
}

}  // namespace
}  // namespace execflow
