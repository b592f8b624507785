#include "exporter/config/config.h"

#include <gtest/gtest.h>

#include <fstream>

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
  EXPECT_EQ(c->events.output, d.events.output);
  EXPECT_EQ(c->events.file_path, d.events.file_path);
  EXPECT_EQ(c->events.file_max_bytes, d.events.file_max_bytes);
  EXPECT_EQ(c->events.file_max_files, d.events.file_max_files);
  EXPECT_EQ(c->bpf.run_time_stats, d.bpf.run_time_stats);
  EXPECT_EQ(c->tcp.enabled, d.tcp.enabled);
  EXPECT_EQ(c->tcp.hook, d.tcp.hook);
  EXPECT_EQ(c->tcp.close_hook, d.tcp.close_hook);
  EXPECT_EQ(c->tcp.labels, d.tcp.labels);
  EXPECT_EQ(c->tcp.max_series, d.tcp.max_series);
  EXPECT_EQ(c->tcp.max_flows, d.tcp.max_flows);
  EXPECT_EQ(c->tcp.closed_flow_retention_scrapes, d.tcp.closed_flow_retention_scrapes);
}

TEST(Config, TcpSection) {
  auto c = ParseConfig(R"(
tcp:
  enabled: false
  hook: kprobe
  close_hook: tracepoint
  labels: [daddr, dport]
  max_series: 50
  max_flows: 64
  closed_flow_retention_scrapes: 3
)", "test.yaml");
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_FALSE(c->tcp.enabled);
  EXPECT_EQ(c->tcp.hook, "kprobe");
  EXPECT_EQ(c->tcp.close_hook, "tracepoint");
  EXPECT_EQ(c->tcp.labels, (std::vector<std::string>{"daddr", "dport"}));
  EXPECT_EQ(c->tcp.max_series, 50u);
  EXPECT_EQ(c->tcp.max_flows, 64u);
  EXPECT_EQ(c->tcp.closed_flow_retention_scrapes, 3u);
  auto empty = ParseConfig("tcp:\n  labels: []\n", "test.yaml");
  ASSERT_TRUE(empty.has_value());
  EXPECT_TRUE(empty->tcp.labels.empty());
}

TEST(Config, TcpLabelErrors) {
  EXPECT_EQ(ErrorOf("tcp:\n  labels: [saddr, pid]\n"),
            "test.yaml:2: tcp.labels: expected a list of saddr, sport, daddr, dport, got 'pid'");
  EXPECT_EQ(ErrorOf("tcp:\n  labels: [dport, dport]\n"),
            "test.yaml:2: tcp.labels: 'dport' is listed twice");
  EXPECT_EQ(ErrorOf("tcp:\n  labels: dport\n"),
            "test.yaml:2: tcp.labels: expected a list of saddr, sport, daddr, dport");
  EXPECT_EQ(ErrorOf("tcp:\n  closed_flow_retention_scrapes: 0\n"),
            "test.yaml:2: tcp.closed_flow_retention_scrapes: expected an integer from 1 to 1000000, got '0'");
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
  EXPECT_EQ(c->events.output, "file");
  EXPECT_EQ(c->events.file_path, "/tmp/x.jsonl");
  EXPECT_EQ(c->events.file_max_bytes, 8192u);
  EXPECT_EQ(c->events.file_max_files, 2u);
  EXPECT_TRUE(c->bpf.run_time_stats);
}

TEST(Config, UnknownTopLevelKey) {
  EXPECT_EQ(ErrorOf("exec:\n  enabled: true\nexecs: {}\n"),
            "test.yaml:3: execs: unknown key (known: bpf, events, exec, tcp)");
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
}

TEST(Config, BadBool) {
  EXPECT_EQ(ErrorOf("bpf:\n  run_time_stats: maybe\n"),
            "test.yaml:2: bpf.run_time_stats: expected true or false, got 'maybe'");
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
  EXPECT_EQ(ErrorOf("exec:\n  failures_hook: tp_btf\n"),
            "test.yaml:2: exec.failures_hook: expected one of auto, tracepoint, off, got 'tp_btf'");
}

TEST(Config, RingBufferMustBePowerOfTwo) {
  EXPECT_EQ(ErrorOf("events:\n  ring_buffer_bytes: 100000\n"),
            "test.yaml: events.ring_buffer_bytes: must be a power of two, got 100000");
}

TEST(Config, SectionMustBeMapping) {
  EXPECT_EQ(ErrorOf("exec: 3\n"), "test.yaml:1: exec: expected a mapping");
  EXPECT_EQ(ErrorOf("- a\n- b\n"), "test.yaml:1: top level: expected a mapping");
}

TEST(Config, InvalidYaml) {
  EXPECT_EQ(ErrorOf("exec:\n  enabled: [true\n"),
            "test.yaml:3: invalid YAML: end of sequence flow not found");
}

TEST(Config, MissingFileNamesThePath) {
  auto c = LoadConfigFile("/nonexistent/execflow.yaml");
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().message, "read config /nonexistent/execflow.yaml: No such file or directory");
}

TEST(WebConfig, TlsAndUsers) {
  auto w = ParseWebConfig(R"(
tls_server_config:
  cert_file: /etc/execflow/tls.crt
  key_file: /etc/execflow/tls.key
basic_auth_users:
  prometheus: $2y$10$X0Gq7H8vSb2lM7E0xXWq3OvqJqD1dJ7lq8mXg6b8KZfH0wV7qV2uW
)", "web.yml");
  ASSERT_TRUE(w.has_value()) << w.error().message;
  EXPECT_EQ(w->tls_cert_file, "/etc/execflow/tls.crt");
  EXPECT_EQ(w->tls_key_file, "/etc/execflow/tls.key");
  ASSERT_EQ(w->basic_auth_users.size(), 1u);
  EXPECT_EQ(w->basic_auth_users.begin()->first, "prometheus");
}

TEST(WebConfig, Errors) {
  auto a = ParseWebConfig("tls_server_config:\n  cert_file: /x\n", "web.yml");
  ASSERT_FALSE(a.has_value());
  EXPECT_EQ(a.error().message, "web.yml: tls_server_config: cert_file and key_file go together");
  auto b = ParseWebConfig("basic_auth_users:\n  alice: secret\n", "web.yml");
  ASSERT_FALSE(b.has_value());
  EXPECT_EQ(b.error().message,
            "web.yml:2: basic_auth_users: user 'alice': expected a bcrypt hash (htpasswd -nBC 10 alice)");
  auto c = ParseWebConfig("tls_config: {}\n", "web.yml");
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().message, "web.yml:1: tls_config: unknown key (known: basic_auth_users, tls_server_config)");
}

}  // namespace
}  // namespace execflow
