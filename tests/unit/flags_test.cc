#include "exporter/flags.h"

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <vector>

namespace execflow {
namespace {

Result<Flags> Parse(std::initializer_list<const char*> args) {
  std::vector<const char*> argv = {"execflow_exporter"};
  argv.insert(argv.end(), args);
  return ParseFlags(static_cast<int>(argv.size()), argv.data());
}

std::string ParseError(std::initializer_list<const char*> args) {
  auto f = Parse(args);
  return f ? "no error" : f.error().message;
}

// The web options of a command line, or its error.
Result<HttpOptions> Web(std::initializer_list<const char*> args) {
  auto f = Parse(args);
  if (!f) return std::unexpected(f.error());
  return WebOptions(*f);
}

std::string WebError(std::initializer_list<const char*> args) {
  auto w = Web(args);
  return w ? "no error" : w.error().message;
}

using Addresses = std::vector<std::string>;

TEST(Flags, ListenAddressDefaultsToPort9741) {
  auto w = Web({});
  ASSERT_TRUE(w.has_value()) << w.error().message;
  EXPECT_EQ(w->listen_addresses, Addresses{":9741"});
  EXPECT_TRUE(w->systemd_sockets.empty());
}

TEST(Flags, ListenAddressIsRepeatableAndReplacesTheDefault) {
  auto f = Parse({"--web.listen-address=127.0.0.1:9741", "--log.level", "debug",
                  "--web.listen-address", "127.0.0.2:9742", "--web.listen-address=:9743"});
  ASSERT_TRUE(f.has_value()) << f.error().message;
  EXPECT_EQ(f->listen_addresses, (Addresses{"127.0.0.1:9741", "127.0.0.2:9742", ":9743"}));
  EXPECT_FALSE(f->systemd_socket);
  auto w = WebOptions(*f);
  ASSERT_TRUE(w.has_value()) << w.error().message;
  EXPECT_EQ(w->listen_addresses, (Addresses{"127.0.0.1:9741", "127.0.0.2:9742", ":9743"}));

  auto one = Web({"--web.listen-address=127.0.0.1:1234"});
  ASSERT_TRUE(one.has_value());
  EXPECT_EQ(one->listen_addresses, Addresses{"127.0.0.1:1234"});
}

TEST(Flags, EveryListenAddressIsChecked) {
  EXPECT_EQ(WebError({"--web.listen-address=127.0.0.1:9741", "--web.listen-address=localhost:9742"}),
            "--web.listen-address 'localhost:9742': the host must be an IP address (civetweb does "
            "not resolve names)");
  EXPECT_EQ(WebError({"--web.listen-address=:9741", "--web.listen-address=:99999",
                      "--web.listen-address=9741"}),
            "--web.listen-address ':99999': port out of range");
  EXPECT_EQ(WebError({"--web.listen-address=:9741", "--web.listen-address="}),
            "--web.listen-address '': expected [HOST]:PORT");
  if (!CivetwebHasIpv6()) {  // Debian 12's civetweb
    EXPECT_EQ(WebError({"--web.listen-address=:9741", "--web.listen-address=[::1]:9741"}),
              "--web.listen-address '[::1]:9741': this build of civetweb has no IPv6 (Debian 12's "
              "is built without it); use an IPv4 address");
  }
}

TEST(Flags, SystemdSocketReplacesTheAddresses) {
  auto f = Parse({"--web.systemd-socket"});
  ASSERT_TRUE(f.has_value()) << f.error().message;
  EXPECT_TRUE(f->systemd_socket);
  EXPECT_TRUE(f->listen_addresses.empty());
  auto w = WebOptions(*f);
  ASSERT_TRUE(w.has_value()) << w.error().message;
  // Nothing to bind: the sockets come from systemd (SystemdSockets()).
  EXPECT_TRUE(w->listen_addresses.empty());
  EXPECT_TRUE(w->systemd_sockets.empty());
}

TEST(Flags, SystemdSocketAndListenAddressAreMutuallyExclusive) {
  const std::string why =
      "--web.listen-address and --web.systemd-socket are mutually exclusive: with "
      "--web.systemd-socket the socket unit's ListenStream= says where to listen";
  EXPECT_EQ(WebError({"--web.systemd-socket", "--web.listen-address=:9741"}), why);
  EXPECT_EQ(WebError({"--web.listen-address=127.0.0.1:9741", "--web.systemd-socket"}), why);
  // Even the default address, given explicitly.
  EXPECT_EQ(WebError({"--web.listen-address", ":9741", "--web.systemd-socket"}), why);
}

TEST(Flags, Errors) {
  EXPECT_EQ(ParseError({"--web.systemd-socket=true"}), "flag --web.systemd-socket takes no value");
  EXPECT_EQ(ParseError({"--web.systemd-socket", "--web.systemd-socket"}),
            "flag --web.systemd-socket given twice (only --web.listen-address can be repeated)");
  EXPECT_EQ(ParseError({"--web.telemetry-path=/a", "--web.telemetry-path=/b"}),
            "flag --web.telemetry-path given twice (only --web.listen-address can be repeated)");
  EXPECT_EQ(ParseError({"--web.listen-address"}), "flag --web.listen-address needs a value");
  EXPECT_EQ(ParseError({"--web.listen"}), "unknown flag --web.listen");
  EXPECT_EQ(ParseError({"--web.systemd-sockets"}), "unknown flag --web.systemd-sockets");
  EXPECT_EQ(ParseError({"serve"}), "unexpected argument 'serve'");
  EXPECT_EQ(WebError({"--web.max-connections=0"}), "--web.max-connections '0': expected 1 to 4096");
  EXPECT_EQ(WebError({"--web.read-timeout=0s"}),
            "--web.read-timeout '0s': expected a duration from 1ms to 1h");
}

// The spellings exporter-toolkit's flags take, which CLI11 alone would read
// differently: "--name=" is an empty value (not "take the next argument"), a
// value may look like a flag, and a switch takes no value at all.
TEST(Flags, Spellings) {
  auto f = Parse({"--web.config.file=", "--log.level=debug", "--config.file", "--help",
                  "--web.telemetry-path=/a=b"});
  ASSERT_TRUE(f.has_value()) << f.error().message;
  EXPECT_EQ(f->values.at("web.config.file"), "");
  EXPECT_EQ(f->values.at("log.level"), "debug");
  EXPECT_EQ(f->values.at("config.file"), "--help");
  EXPECT_EQ(f->values.at("web.telemetry-path"), "/a=b");
  EXPECT_FALSE(f->help);
  EXPECT_EQ(ParseError({"--help=true"}), "flag --help takes no value");
  EXPECT_EQ(ParseError({"--version="}), "flag --version takes no value");
  EXPECT_EQ(ParseError({"--config.file="}), "no error");
  EXPECT_EQ(ParseError({"--config.file"}), "flag --config.file needs a value");
  EXPECT_EQ(ParseError({"-h"}), "unexpected argument '-h'");
  EXPECT_EQ(ParseError({"--"}), "unknown flag --");
  EXPECT_EQ(ParseError({"--log.level=debug", "--Log.level=info"}), "unknown flag --Log.level");
  EXPECT_EQ(ParseError({"--web.listen-address=:1", "extra"}), "unexpected argument 'extra'");
}

TEST(Flags, OtherFlagsKeepTheirValues) {
  auto f = Parse({"--config.file", "/etc/x.yaml", "--config.check", "--web.telemetry-path=/m",
                  "--web.max-connections=8", "--web.read-timeout=250ms", "--web.idle-timeout=0"});
  ASSERT_TRUE(f.has_value()) << f.error().message;
  EXPECT_TRUE(f->check);
  EXPECT_EQ(f->values.at("config.file"), "/etc/x.yaml");
  auto w = WebOptions(*f);
  ASSERT_TRUE(w.has_value()) << w.error().message;
  EXPECT_EQ(w->telemetry_path, "/m");
  EXPECT_EQ(w->max_connections, 8);
  EXPECT_EQ(w->read_timeout_seconds, 0.25);
  EXPECT_EQ(w->idle_timeout_seconds, 0.0);
  EXPECT_EQ(w->listen_addresses, Addresses{":9741"});
}

}  // namespace
}  // namespace execflow
