#include "exporter/config/config.h"
#include "exporter/config/web_config.h"
#include "exporter/config/yaml_section.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include "tests/unit/scratch_dir.h"

namespace execflow {
namespace {

std::string ErrorOf(const std::string& yaml) {
  auto c = ParseConfig(yaml, "test.yaml");
  EXPECT_FALSE(c.has_value()) << yaml;
  return c ? "" : c.error().message;
}

TEST(Config, EmptyDocumentGivesDefaults) {
  auto c = ParseConfig("", "test.yaml");
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_TRUE(c->exec.enabled);
  EXPECT_EQ(c->exec.hook, "auto");
  EXPECT_EQ(c->exec.failures_hook, "auto");
  EXPECT_EQ(c->exec.max_uids, 10240u);
  EXPECT_EQ(c->events.ring_buffer_bytes, 1u << 20);
  EXPECT_EQ(c->events.keep_last, 1024u);
  EXPECT_EQ(c->events.args_max_bytes, 4096u);
  EXPECT_EQ(c->events.output, "none");
  EXPECT_FALSE(c->bpf.run_time_stats);
}

TEST(Config, BundledDefaultConfigEqualsBuiltInDefaults) {
  auto c = LoadConfigFile(EXECFLOW_SOURCE_DIR "/config/execflow.yaml");
  ASSERT_TRUE(c.has_value()) << c.error().message;
  Config d;
  EXPECT_EQ(c->exec.enabled, d.exec.enabled);
  EXPECT_EQ(c->exec.hook, d.exec.hook);
  EXPECT_EQ(c->exec.failures_hook, d.exec.failures_hook);
  EXPECT_EQ(c->exec.max_uids, d.exec.max_uids);
  EXPECT_EQ(c->exec.max_failure_keys, d.exec.max_failure_keys);
  EXPECT_EQ(c->events.enabled, d.events.enabled);
  EXPECT_EQ(c->events.ring_buffer_bytes, d.events.ring_buffer_bytes);
  EXPECT_EQ(c->events.keep_last, d.events.keep_last);
  EXPECT_EQ(c->events.args_max_bytes, d.events.args_max_bytes);
  EXPECT_EQ(c->events.redact_flags, d.events.redact_flags);
  EXPECT_EQ(c->events.redact_url_passwords, d.events.redact_url_passwords);
  EXPECT_EQ(c->events.output, d.events.output);
  EXPECT_EQ(c->events.file_path, d.events.file_path);
  EXPECT_EQ(c->events.file_max_bytes, d.events.file_max_bytes);
  EXPECT_EQ(c->events.file_max_files, d.events.file_max_files);
  EXPECT_EQ(c->bpf.run_time_stats, d.bpf.run_time_stats);
  EXPECT_EQ(c->bpf.pin_path, d.bpf.pin_path);
  EXPECT_EQ(c->bpf.state_file, d.bpf.state_file);
  EXPECT_EQ(c->tcp.enabled, d.tcp.enabled);
  EXPECT_EQ(c->tcp.hook, d.tcp.hook);
  EXPECT_EQ(c->tcp.close_hook, d.tcp.close_hook);
  EXPECT_EQ(c->tcp.counter_storage, d.tcp.counter_storage);
  // The one deliberate difference: the bundled file (also the Kubernetes ConfigMap)
  // keeps one series per service edge; the binary's default is one per flow.
  EXPECT_EQ(c->tcp.labels,
            (std::vector<std::string>{"saddr", "daddr", "port", "direction", "namespace", "pod", "container"}));
  EXPECT_EQ(d.tcp.labels,
            (std::vector<std::string>{"saddr", "sport", "daddr", "dport", "namespace", "pod", "container"}));
  EXPECT_EQ(c->tcp.max_series, d.tcp.max_series);
  EXPECT_EQ(c->tcp.max_flows, d.tcp.max_flows);
  EXPECT_EQ(c->tcp.closed_flow_retention, std::chrono::minutes(5));
  EXPECT_EQ(d.tcp.closed_flow_retention, std::chrono::minutes(5));
}

TEST(Config, TcpSection) {
  auto c = ParseConfig(R"(
tcp:
  enabled: false
  hook: kprobe
  close_hook: tracepoint
  counter_storage: flow_map
  labels: [daddr, dport]
  max_series: 50
  max_flows: 64
  closed_flow_retention: 1m30s
)", "test.yaml");
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_FALSE(c->tcp.enabled);
  EXPECT_EQ(c->tcp.hook, "kprobe");
  EXPECT_EQ(c->tcp.close_hook, "tracepoint");
  EXPECT_EQ(c->tcp.counter_storage, "flow_map");
  EXPECT_EQ(c->tcp.labels, (std::vector<std::string>{"daddr", "dport"}));
  EXPECT_EQ(c->tcp.max_series, 50u);
  EXPECT_EQ(c->tcp.max_flows, 64u);
  EXPECT_EQ(c->tcp.closed_flow_retention, std::chrono::seconds(90));
  auto empty = ParseConfig("tcp:\n  labels: []\n", "test.yaml");
  ASSERT_TRUE(empty.has_value());
  EXPECT_TRUE(empty->tcp.labels.empty());
}

TEST(Config, TcpLabelErrors) {
  EXPECT_EQ(ErrorOf("tcp:\n  labels: [saddr, pid]\n"),
            "test.yaml:2: tcp.labels: expected a list of saddr, sport, daddr, dport, port, direction, namespace, pod, "
            "container, got 'pid'");
  EXPECT_EQ(ErrorOf("tcp:\n  labels: [dport, dport]\n"),
            "test.yaml:2: tcp.labels: 'dport' is listed twice");
  EXPECT_EQ(ErrorOf("tcp:\n  labels: dport\n"),
            "test.yaml:2: tcp.labels: expected a list of saddr, sport, daddr, dport, port, direction, namespace, pod, "
            "container");
  EXPECT_EQ(ErrorOf("exec:\n  labels: [uid, errno]\n"),
            "test.yaml:2: exec.labels: expected a list of uid, namespace, pod, container, got 'errno'");
  EXPECT_EQ(ErrorOf("workloads:\n  kubelet_log_dir: \"\"\n"),
            "test.yaml:2: workloads.kubelet_log_dir: expected a non-empty string");
  EXPECT_EQ(ErrorOf("tcp:\n  closed_flow_retention: 0\n"),
            "test.yaml:2: tcp.closed_flow_retention: expected a duration from 1s to 24h, got '0'");
  EXPECT_EQ(ErrorOf("tcp:\n  closed_flow_retention: 5\n"),
            "test.yaml:2: tcp.closed_flow_retention: expected a duration such as 5s, 250ms or 1m30s, got '5'");
  EXPECT_EQ(ErrorOf("tcp:\n  closed_flow_retention_scrapes: 2\n"),
            "test.yaml:2: tcp.closed_flow_retention_scrapes: was replaced by closed_flow_retention, a duration "
            "(default 5m)");
}

TEST(Config, ParsesEveryKey) {
  auto c = ParseConfig(R"(
exec:
  enabled: false
  hook: tracepoint
  failures_hook: "off"
  max_uids: 64
  max_failure_keys: 32
events:
  enabled: true
  transport: perfbuf
  ring_buffer_bytes: 65536
  keep_last: 7
  args_max_bytes: 30720
  output: file
  file:
    path: /tmp/x.jsonl
    max_size_bytes: 8192
    max_files: 2
bpf:
  run_time_stats: true
)", "test.yaml");
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_FALSE(c->exec.enabled);
  EXPECT_EQ(c->exec.hook, "tracepoint");
  EXPECT_EQ(c->exec.failures_hook, "off");
  EXPECT_EQ(c->exec.max_uids, 64u);
  EXPECT_EQ(c->exec.max_failure_keys, 32u);
  EXPECT_EQ(c->events.transport, "perfbuf");
  EXPECT_EQ(c->events.ring_buffer_bytes, 65536u);
  EXPECT_EQ(c->events.keep_last, 7u);
  EXPECT_EQ(c->events.args_max_bytes, 30720u);
  EXPECT_EQ(c->events.output, "file");
  EXPECT_EQ(c->events.file_path, "/tmp/x.jsonl");
  EXPECT_EQ(c->events.file_max_bytes, 8192u);
  EXPECT_EQ(c->events.file_max_files, 2u);
  EXPECT_TRUE(c->bpf.run_time_stats);
}

TEST(Config, UnknownTopLevelKey) {
  EXPECT_EQ(ErrorOf("exec:\n  enabled: true\nexecs: {}\n"),
            "test.yaml:3: execs: unknown key (known: bpf, events, exec, tcp, workloads)");
}

TEST(Config, UnknownNestedKey) {
  EXPECT_EQ(ErrorOf("events:\n  file:\n    pth: /x\n"),
            "test.yaml:3: events.file.pth: unknown key (known: max_files, max_size_bytes, path)");
}

TEST(Config, BadInteger) {
  EXPECT_EQ(ErrorOf("exec:\n  max_uids: lots\n"),
            "test.yaml:2: exec.max_uids: expected an integer from 1 to 1048576, got 'lots'");
  EXPECT_EQ(ErrorOf("exec:\n  max_uids: 0\n"),
            "test.yaml:2: exec.max_uids: expected an integer from 1 to 1048576, got '0'");
  EXPECT_EQ(ErrorOf("exec:\n  max_uids: -5\n"),
            "test.yaml:2: exec.max_uids: expected an integer from 1 to 1048576, got '-5'");
  EXPECT_EQ(ErrorOf("events:\n  args_max_bytes: 30721\n"),
            "test.yaml:2: events.args_max_bytes: expected an integer from 0 to 30720, got '30721'");
}

TEST(Config, BadBool) {
  EXPECT_EQ(ErrorOf("bpf:\n  run_time_stats: maybe\n"),
            "test.yaml:2: bpf.run_time_stats: expected true or false, got 'maybe'");
}

TEST(Config, StateFile) {
  auto c = ParseConfig("bpf:\n  state_file: /var/lib/execflow/state.json\n", "test.yaml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->bpf.state_file, "/var/lib/execflow/state.json");
  c = ParseConfig("bpf:\n  state_file: off\n", "test.yaml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->bpf.state_file, "");
  EXPECT_EQ(ParseConfig("", "test.yaml")->bpf.state_file, "/run/execflow/state.json");
  EXPECT_EQ(ErrorOf("bpf:\n  state_file: state.json\n"),
            "test.yaml:2: bpf.state_file: expected off or an absolute file path such as "
            "/run/execflow/state.json (absolute, not /), got 'state.json'");
  EXPECT_EQ(ErrorOf("bpf:\n  state_file: /run/execflow/\n"),
            "test.yaml:2: bpf.state_file: expected off or an absolute file path such as "
            "/run/execflow/state.json (no trailing /), got '/run/execflow/'");
  EXPECT_EQ(ErrorOf("bpf:\n  state_file: /run/../etc/state.json\n"),
            "test.yaml:2: bpf.state_file: expected off or an absolute file path such as "
            "/run/execflow/state.json (no empty, . or .. components), got '/run/../etc/state.json'");
}

TEST(Config, BadEnum) {
  EXPECT_EQ(ErrorOf("exec:\n  hook: kprobe\n"),
            "test.yaml:2: exec.hook: expected one of auto, tp_btf, tracepoint, got 'kprobe'");
  EXPECT_EQ(ErrorOf("events:\n  output: syslog\n"),
            "test.yaml:2: events.output: expected one of none, stdout, file, got 'syslog'");
  EXPECT_EQ(ErrorOf("events:\n  transport: pipe\n"),
            "test.yaml:2: events.transport: expected one of auto, ringbuf, perfbuf, got 'pipe'");
}

TEST(Config, HookModesComeFromTheHookTable) {
  EXPECT_EQ(ErrorOf("tcp:\n  hook: uprobe\n"),
            "test.yaml:2: tcp.hook: expected one of auto, fexit, kprobe, tp_btf, tracepoint, got 'uprobe'");
  EXPECT_EQ(ErrorOf("tcp:\n  close_hook: fexit\n"),
            "test.yaml:2: tcp.close_hook: expected one of auto, tp_btf, tracepoint, got 'fexit'");
  EXPECT_EQ(ErrorOf("tcp:\n  counter_storage: sockets\n"),
            "test.yaml:2: tcp.counter_storage: expected one of auto, socket, flow_map, got 'sockets'");
  EXPECT_EQ(ErrorOf("exec:\n  failures_hook: tp_btf\n"),
            "test.yaml:2: exec.failures_hook: expected one of auto, fexit, tracepoint, off, got 'tp_btf'");
}

TEST(Config, RingBufferMustBePowerOfTwo) {
  EXPECT_EQ(ErrorOf("events:\n  ring_buffer_bytes: 100000\n"),
            "test.yaml: events.ring_buffer_bytes: must be a power of two, got 100000");
}

TEST(Config, SectionMustBeMapping) {
  EXPECT_EQ(ErrorOf("exec: 3\n"), "test.yaml:1: exec: expected a mapping");
  EXPECT_EQ(ErrorOf("- a\n- b\n"), "test.yaml:1: top level: expected a mapping");
}

TEST(Config, InvalidYamlSaysWhereButNotWhat) {
  EXPECT_EQ(ErrorOf("exec:\n  enabled: [true\n"),
            "test.yaml:3:1: invalid YAML: end of sequence flow not found");
  // The offending text is not quoted back.
  const std::string e = ErrorOf("exec: {hook: s3cret-token\n");
  EXPECT_EQ(e, "test.yaml:2:1: invalid YAML: end of map flow not found");
}

TEST(Config, InputsYamlCppNeverFinishesAreRefusedAtOnce) {
  // yaml-cpp 0.7's LoadAll() spins on these, growing without bound (found by
  // tests/fuzz/config_fuzzer); Load() would call them an empty config.
  EXPECT_EQ(ErrorOf(", enabled: true\n"), "test.yaml:1:1: invalid YAML: no document could be read");
  EXPECT_EQ(ErrorOf(","), "test.yaml:1:1: invalid YAML: no document could be read");
}

TEST(Config, OneDocumentOnly) {
  // A second document would be ignored by yaml-cpp's Load(): tcp would stay on.
  EXPECT_EQ(ErrorOf("tcp:\n  enabled: false\n---\ntcp:\n  enabled: true\n"),
            "test.yaml:3: a second YAML document ('---'): execflow reads exactly one");
  EXPECT_EQ(ErrorOf("tcp: {}\n---\n"),
            "test.yaml:2: a second YAML document ('---'): execflow reads exactly one");
  // An explicit start or end marker around one document is fine.
  EXPECT_TRUE(ParseConfig("---\ntcp:\n  enabled: false\n...\n", "test.yaml").has_value());
}

TEST(Config, DuplicateKeysAreRefused) {
  EXPECT_EQ(ErrorOf("tcp:\n  enabled: false\n  enabled: true\n"),
            "test.yaml:3: tcp.enabled: duplicate key (first at line 2)");
  EXPECT_EQ(ErrorOf("exec: {}\nexec:\n  enabled: false\n"),
            "test.yaml:2: exec: duplicate key (first at line 1)");
  EXPECT_EQ(ErrorOf("events:\n  file: {path: /a, path: /b}\n"),
            "test.yaml:2: events.file.path: duplicate key (first at line 2)");
}

TEST(Config, KeysMustBePlainNames) {
  EXPECT_EQ(ErrorOf("? [a]\n: 1\n"), "test.yaml:1: top level: keys must be plain names");
}

TEST(Config, ErrorsAreBoundedAndDoNotEchoForeignFiles) {
  const std::string huge(200000, 'x');
  const std::string e = ErrorOf("exec:\n  hook: " + huge + "\n");
  EXPECT_EQ(e, "test.yaml:2: exec.hook: expected one of auto, tp_btf, tracepoint, got '" +
                   std::string(64, 'x') + "...' (200000 bytes)");
  // Control bytes are escaped, never written raw into a log line.
  EXPECT_EQ(ErrorOf("exec:\n  hook: \"a\\x1b[31mb\\nc\"\n"),
            "test.yaml:2: exec.hook: expected one of auto, tp_btf, tracepoint, got "
            "'a\\x1b[31mb\\x0ac'");
  // The first line of /etc/shadow parses as a key; it must not be shown.
  const std::string shadow = "root:$y$j9T$abcdefghijklmnop$qrstuvwxyz0123456789ABCDEFGHIJK:19000:0:99999:7:::\n"
                             "daemon:*:19000:0:99999:7:::\n";
  const std::string s = ErrorOf(shadow);
  EXPECT_EQ(s, "test.yaml:1: <key not shown>: unknown key (known: bpf, events, exec, tcp, workloads)");
  const std::string nested = ErrorOf("exec:\n  \"pass word\": 1\n");
  EXPECT_EQ(nested, "test.yaml:2: exec.<key not shown>: unknown key (known: enabled, failures_hook, hook, "
                    "labels, max_failure_keys, max_uids)");
}

TEST(Config, ShownQuotesEscapesAndTruncates) {
  EXPECT_EQ(Shown("abc"), "'abc'");
  EXPECT_EQ(Shown(""), "''");
  EXPECT_EQ(Shown(std::string("a\0b", 3)), "'a\\x00b'");
  EXPECT_EQ(Shown("it's"), "'it\\x27s'");
  EXPECT_EQ(Shown(std::string(65, 'y')), "'" + std::string(64, 'y') + "...' (65 bytes)");
}

// A scratch directory, removed with what it holds.
class ConfigFiles : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
  ScratchDir scratch_{"execflow-config-test"};
  const std::string dir_ = scratch_.path();
};

TEST_F(ConfigFiles, ADirectoryIsNotAConfig) {
  auto c = LoadConfigFile(dir_);
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().message, "read config " + dir_ + ": a directory, not a regular file");
}

TEST_F(ConfigFiles, AFifoIsRefusedAtOnce) {
  const std::string fifo = dir_ + "/fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  const auto t0 = std::chrono::steady_clock::now();
  auto c = LoadConfigFile(fifo);  // no writer: a blocking open would never return
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().message, "read config " + fifo + ": a FIFO, not a regular file");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
}

TEST_F(ConfigFiles, DevicesAreRefused) {
  auto c = LoadConfigFile("/dev/zero");
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().message, "read config /dev/zero: a character device, not a regular file");
}

TEST_F(ConfigFiles, SizeCap) {
  // Exactly at the cap is read (comments only: the defaults).
  std::string at_cap(kMaxConfigBytes, '#');
  at_cap[kMaxConfigBytes - 1] = '\n';
  auto ok = LoadConfigFile(Write("at-cap.yaml", at_cap));
  EXPECT_TRUE(ok.has_value()) << ok.error().message;
  const std::string path = Write("big.yaml", at_cap + "#");
  auto c = LoadConfigFile(path);
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().message, "read config " + path + ": larger than the 256 KiB limit");
}

TEST_F(ConfigFiles, SymlinksToRegularFilesAreFollowed) {
  const std::string target = Write("real.yaml", "tcp:\n  enabled: false\n");
  const std::string link = dir_ + "/link.yaml";
  ASSERT_EQ(symlink(target.c_str(), link.c_str()), 0);
  auto c = LoadConfigFile(link);
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_FALSE(c->tcp.enabled);
}

TEST(Duration, GoSyntax) {
  EXPECT_EQ(*ParseDuration("5s"), 5.0);
  EXPECT_EQ(*ParseDuration("250ms"), 0.25);
  EXPECT_EQ(*ParseDuration("1m30s"), 90.0);
  EXPECT_EQ(*ParseDuration("1h"), 3600.0);
  EXPECT_EQ(*ParseDuration("1.5s"), 1.5);
  EXPECT_EQ(*ParseDuration("0"), 0.0);
  EXPECT_DOUBLE_EQ(*ParseDuration("10us"), 10e-6);
  for (const char* bad : {"", "5", "s", "5x", "-1s", "1s5", "5 s", "1e3s"}) {
    auto d = ParseDuration(bad);
    ASSERT_FALSE(d.has_value()) << bad;
    EXPECT_EQ(d.error().message,
              "expected a duration such as 5s, 250ms or 1m30s, got '" + std::string(bad) + "'");
  }
}

TEST(Config, MissingFileNamesThePath) {
  auto c = LoadConfigFile("/nonexistent/execflow.yaml");
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().message, "read config /nonexistent/execflow.yaml: No such file or directory");
}

constexpr const char* kHash = "$2y$10$X0Gq7H8vSb2lM7E0xXWq3OvqJqD1dJ7lq8mXg6b8KZfH0wV7qV2uW";

std::string WebErrorOf(const std::string& yaml) {
  auto w = ParseWebConfig(yaml, "/etc/execflow/web.yml");
  EXPECT_FALSE(w.has_value()) << yaml;
  return w ? "" : w.error().message;
}

TEST(WebConfig, TlsAndUsers) {
  auto w = ParseWebConfig(std::string(R"(
tls_server_config:
  cert_file: /etc/execflow/tls.crt
  key_file: tls.key
  client_ca_file: ca/clients.pem
  client_auth_type: RequireAndVerifyClientCert
  client_allowed_sans: [prometheus.example, 10.0.0.1]
  min_version: TLS13
  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]
  curve_preferences: [X25519, CurveP256]
  prefer_server_cipher_suites: false
http_server_config:
  http2: false
rate_limit:
  interval: 100ms
  burst: 20
basic_auth_users:
  prometheus: )") + kHash + "\n",
                          "/etc/execflow/web.yml");
  ASSERT_TRUE(w.has_value()) << w.error().message;
  const TlsServerConfig& t = w->tls;
  EXPECT_TRUE(t.enabled());
  EXPECT_EQ(t.cert_file, "/etc/execflow/tls.crt");
  // Relative names are relative to the web config file, as in exporter-toolkit.
  EXPECT_EQ(t.key_file, "/etc/execflow/tls.key");
  EXPECT_EQ(t.client_ca_file, "/etc/execflow/ca/clients.pem");
  EXPECT_EQ(t.client_auth_type, "RequireAndVerifyClientCert");
  EXPECT_EQ(t.client_allowed_sans, (std::vector<std::string>{"prometheus.example", "10.0.0.1"}));
  EXPECT_EQ(t.min_version, 0x0304);
  EXPECT_EQ(t.max_version, 0x0304);
  EXPECT_EQ(t.cipher_suites, (std::vector<std::string>{"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"}));
  EXPECT_EQ(t.curve_preferences, (std::vector<std::string>{"X25519", "CurveP256"}));
  EXPECT_FALSE(t.prefer_server_cipher_suites);
  EXPECT_EQ(w->rate_limit_interval_seconds, 0.1);
  EXPECT_EQ(w->rate_limit_burst, 20u);
  ASSERT_EQ(w->basic_auth_users.size(), 1u);
  EXPECT_EQ(w->basic_auth_users.at("prometheus"), kHash);
}

TEST(WebConfig, DefaultsAreExporterToolkits) {
  auto w = ParseWebConfig("tls_server_config:\n  cert_file: c\n  key_file: k\n", "web.yml");
  ASSERT_TRUE(w.has_value()) << w.error().message;
  EXPECT_EQ(w->tls.cert_file, "c");  // no folder in the file name: as given
  EXPECT_EQ(w->tls.client_auth_type, "NoClientCert");
  EXPECT_EQ(w->tls.min_version, 0x0303);
  EXPECT_EQ(w->tls.max_version, 0x0304);
  EXPECT_TRUE(w->tls.prefer_server_cipher_suites);
  EXPECT_EQ(w->rate_limit_interval_seconds, 0);
  auto empty = ParseWebConfig("", "web.yml");
  ASSERT_TRUE(empty.has_value());
  EXPECT_FALSE(empty->tls.enabled());
  EXPECT_TRUE(empty->basic_auth_users.empty());
  // The deprecated name is kept, as in exporter-toolkit.
  auto old = ParseWebConfig("tls_server_config:\n  cert: x\n  key: y\n  client_ca: z\n"
                            "  client_auth_type: RequireClientCert\n", "web.yml");
  ASSERT_TRUE(old.has_value()) << old.error().message;
  EXPECT_EQ(old->tls.client_auth_type, "RequireAnyClientCert");
}

TEST(WebConfig, TlsRulesOfExporterToolkit) {
  const std::string f = "/etc/execflow/web.yml: tls_server_config: ";
  EXPECT_EQ(WebErrorOf("tls_server_config:\n  cert_file: /x\n"), f + "missing one of key or key_file");
  EXPECT_EQ(WebErrorOf("tls_server_config:\n  key_file: /x\n"), f + "missing one of cert or cert_file");
  EXPECT_EQ(WebErrorOf("tls_server_config: {}\n"), f + "missing one of cert or cert_file");
  EXPECT_EQ(WebErrorOf("tls_server_config:\n  cert_file: c\n  key_file: k\n  client_ca_file: ca\n"),
            f + "a client CA is configured but client_auth_type is NoClientCert");
  EXPECT_EQ(WebErrorOf("tls_server_config:\n  cert_file: c\n  key_file: k\n"
                       "  client_auth_type: RequireAndVerifyClientCert\n"),
            f + "client_auth_type RequireAndVerifyClientCert needs client_ca_file");
  EXPECT_EQ(WebErrorOf("tls_server_config:\n  cert_file: c\n  key_file: k\n  client_allowed_sans: [a]\n"),
            f + "client_allowed_sans requires client_auth_type to be one of RequireAnyClientCert or "
                "RequireAndVerifyClientCert");
  EXPECT_EQ(WebErrorOf("tls_server_config:\n  cert_file: c\n  key_file: k\n  min_version: TLS13\n"
                       "  max_version: TLS12\n"),
            f + "min_version is above max_version");
  EXPECT_EQ(WebErrorOf("tls_server_config:\n  cert_file: c\n  cert: x\n  key_file: k\n"),
            f + "cert and cert_file are exclusive");
  EXPECT_EQ(WebErrorOf("tls_server_config:\n  min_version: SSL3\n"),
            "/etc/execflow/web.yml:2: tls_server_config.min_version: expected one of TLS10, TLS11, TLS12, "
            "TLS13, got 'SSL3'");
  EXPECT_EQ(WebErrorOf("tls_server_config:\n  cipher_suites: [RC4-MD5]\n"),
            "/etc/execflow/web.yml:2: tls_server_config.cipher_suites: unknown value 'RC4-MD5'");
  EXPECT_EQ(WebErrorOf("tls_server_config:\n  client_auth_type: Sometimes\n"),
            "/etc/execflow/web.yml:2: tls_server_config.client_auth_type: expected one of NoClientCert, "
            "RequestClientCert, RequireAnyClientCert, RequireClientCert, VerifyClientCertIfGiven, "
            "RequireAndVerifyClientCert, got 'Sometimes'");
}

TEST(WebConfig, UsersAndHashes) {
  // The hash is a secret: an error names the user, never the hash.
  EXPECT_EQ(WebErrorOf("basic_auth_users:\n  alice: s3cret-plaintext\n"),
            "/etc/execflow/web.yml:2: basic_auth_users: user 'alice': expected a bcrypt hash "
            "(htpasswd -nBC 10 alice)");
  EXPECT_EQ(WebErrorOf("basic_auth_users:\n  alice: $2y$03$X0Gq7H8vSb2lM7E0xXWq3OvqJqD1dJ7lq8mXg6b8KZfH0wV7qV2uW\n"),
            "/etc/execflow/web.yml:2: basic_auth_users: user 'alice': expected a bcrypt hash "
            "(htpasswd -nBC 10 alice)");
  EXPECT_EQ(WebErrorOf(std::string("basic_auth_users:\n  \"a:b\": ") + kHash + "\n"),
            "/etc/execflow/web.yml:2: basic_auth_users: user 'a:b': a user name is 1 to 256 bytes "
            "without ':' or control characters");
  EXPECT_EQ(WebErrorOf(std::string("basic_auth_users:\n  \"a\\tb\": ") + kHash + "\n"),
            "/etc/execflow/web.yml:2: basic_auth_users: user 'a\\x09b': a user name is 1 to 256 bytes "
            "without ':' or control characters");
  EXPECT_EQ(WebErrorOf(std::string("basic_auth_users:\n  bob: ") + kHash + "\n  bob: " + kHash + "\n"),
            "/etc/execflow/web.yml:2: basic_auth_users: user 'bob' is listed twice");
}

TEST(WebConfig, OtherErrors) {
  EXPECT_EQ(WebErrorOf("tls_config: {}\n"),
            "/etc/execflow/web.yml:1: tls_config: unknown key (known: basic_auth_users, "
            "http_server_config, rate_limit, tls_server_config)");
  EXPECT_EQ(WebErrorOf("http_server_config:\n  headers: {X-Frame-Options: deny}\n"),
            "/etc/execflow/web.yml:2: http_server_config.headers: unknown key (known: http2)");
  EXPECT_EQ(WebErrorOf("rate_limit:\n  interval: soon\n"),
            "/etc/execflow/web.yml: rate_limit.interval: expected a duration such as 5s, 250ms or "
            "1m30s, got 'soon'");
  EXPECT_EQ(WebErrorOf("rate_limit:\n  interval: 1s\n"),
            "/etc/execflow/web.yml: rate_limit: burst must be at least 1 when interval is set");
}

}  // namespace
}  // namespace execflow
