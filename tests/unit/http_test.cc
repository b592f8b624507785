#include "exporter/http/server.h"

#include <crypt.h>
#include <gtest/gtest.h>

#include "exporter/metrics/families.h"
#include "tests/unit/http_client.h"

namespace execflow {
namespace {

class StaticMetrics : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override {
    auto f = Counter("execflow_execs_total", "Successful execs.");
    AddCounter(f, {{"uid", "1000"}}, 200);
    return {f};
  }
};

std::unique_ptr<HttpServer> StartServer(std::shared_ptr<StaticMetrics> m) {
  HttpOptions o;
  o.listen_address = "127.0.0.1:0";
  std::map<std::string, HttpHandler> routes;
  routes["/healthz"] = [](std::string_view) { return HttpResponse{200, "text/plain", "ok\n"}; };
  routes["/readyz"] = [](std::string_view) { return HttpResponse{503, "text/plain", "not yet\n"}; };
  routes["/echo"] = [](std::string_view q) { return HttpResponse{200, "text/plain", std::string(q)}; };
  auto s = HttpServer::Start(o, m, routes);
  EXPECT_TRUE(s.has_value()) << s.error().message;
  return s ? std::move(*s) : nullptr;
}

TEST(HttpServer, ServesMetricsAndRoutesOnAnEphemeralPort) {
  auto metrics = std::make_shared<StaticMetrics>();
  auto server = StartServer(metrics);
  ASSERT_NE(server, nullptr);
  ASSERT_GT(server->port(), 0);

  auto m = HttpRequest(server->port(), "/metrics");
  EXPECT_EQ(m.status, 200);
  EXPECT_NE(m.body.find("# TYPE execflow_execs_total counter"), std::string::npos) << m.body;
  EXPECT_NE(m.body.find("execflow_execs_total{uid=\"1000\"} 200"), std::string::npos) << m.body;

  auto h = HttpRequest(server->port(), "/healthz");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.body, "ok\n");
  EXPECT_NE(h.headers.find("Content-Length: 3"), std::string::npos);
  EXPECT_EQ(HttpRequest(server->port(), "/readyz").status, 503);
  EXPECT_EQ(HttpRequest(server->port(), "/echo?limit=3").body, "limit=3");
  EXPECT_EQ(HttpRequest(server->port(), "/nope").status, 404);
  EXPECT_EQ(HttpRequest(server->port(), "/healthz", "POST").status, 405);
  auto head = HttpRequest(server->port(), "/healthz", "HEAD");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.body, "");
}

TEST(HttpServer, TwoServersKeepTheirOwnRoutes) {
  auto metrics = std::make_shared<StaticMetrics>();
  auto a = StartServer(metrics);
  HttpOptions o;
  o.listen_address = "127.0.0.1:0";
  auto b = HttpServer::Start(o, metrics, {{"/only-b", [](std::string_view) {
                                             return HttpResponse{200, "text/plain", "b"};
                                           }}});
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(HttpRequest(a->port(), "/only-b").status, 404);
  EXPECT_EQ(HttpRequest((*b)->port(), "/only-b").body, "b");
}

TEST(HttpServer, PortInUseIsAClearError) {
  auto metrics = std::make_shared<StaticMetrics>();
  auto a = StartServer(metrics);
  HttpOptions o;
  o.listen_address = "127.0.0.1:" + std::to_string(a->port());
  auto b = HttpServer::Start(o, metrics, {});
  ASSERT_FALSE(b.has_value());
  EXPECT_EQ(b.error().message.rfind("listen on 127.0.0.1:" + std::to_string(a->port()) + ": ", 0), 0u)
      << b.error().message;
  EXPECT_NE(b.error().message.find("--web.listen-address"), std::string::npos);
}

TEST(HttpServer, BasicAuthGuardsEverythingButProbes) {
  auto metrics = std::make_shared<StaticMetrics>();
  HttpOptions o;
  o.listen_address = "127.0.0.1:0";
  char salt[64];
  crypt_gensalt_rn("$2b$", 4, nullptr, 0, salt, sizeof(salt));
  crypt_data d{};
  o.basic_auth_users = {{"prometheus", crypt_r("s3cret", salt, &d)}};
  auto s = HttpServer::Start(o, metrics, {{"/healthz", [](std::string_view) {
                                            return HttpResponse{200, "text/plain", "ok\n"};
                                          }},
                                          {"/api/v1/events", [](std::string_view) {
                                            return HttpResponse{200, "application/json", "[]"};
                                          }}});
  ASSERT_TRUE(s.has_value()) << s.error().message;
  const int port = (*s)->port();
  auto denied = HttpRequest(port, "/metrics");
  EXPECT_EQ(denied.status, 401);
  EXPECT_NE(denied.headers.find("WWW-Authenticate: Basic realm=\"execflow\""), std::string::npos);
  EXPECT_EQ(HttpRequest(port, "/api/v1/events").status, 401);
  EXPECT_EQ(HttpRequest(port, "/healthz").status, 200);
  const std::string good = "Authorization: Basic cHJvbWV0aGV1czpzM2NyZXQ=";  // prometheus:s3cret
  const std::string bad = "Authorization: Basic cHJvbWV0aGV1czp3cm9uZw==";   // prometheus:wrong
  auto ok = HttpRequest(port, "/metrics", "GET", good);
  EXPECT_EQ(ok.status, 200);
  EXPECT_NE(ok.body.find("execflow_execs_total"), std::string::npos);
  EXPECT_EQ(HttpRequest(port, "/api/v1/events", "GET", good).body, "[]");
  EXPECT_EQ(HttpRequest(port, "/metrics", "GET", bad).status, 401);
}

TEST(ListenAddress, TranslatesToCivetwebSyntax) {
  EXPECT_EQ(*CivetListeningPorts(":9741"), "9741");
  EXPECT_EQ(*CivetListeningPorts("127.0.0.1:0"), "127.0.0.1:0");
  EXPECT_EQ(*CivetListeningPorts("[::1]:9741"), "[::1]:9741");
  EXPECT_EQ(CivetListeningPorts("9741").error().message,
            "--web.listen-address '9741': expected [HOST]:PORT");
  EXPECT_EQ(CivetListeningPorts(":99999").error().message,
            "--web.listen-address ':99999': port out of range");
  EXPECT_EQ(CivetListeningPorts("::1:9741").error().message,
            "--web.listen-address '::1:9741': IPv6 addresses go in brackets: [::1]:9741");
  EXPECT_EQ(CivetListeningPorts(":http").error().message,
            "--web.listen-address ':http': bad port");
}

}  // namespace
}  // namespace execflow
