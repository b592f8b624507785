#include "exporter/collectors/tcp_collector.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <sched.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fcntl.h>
#include <map>
#include <set>

#include <gtest/gtest.h>

#include "exporter/bpf/libbpf_log.h"
#include "exporter/bpf/programs.h"
#include "exporter/common/unique_fd.h"
#include "tcp.skel.h"
#include "tests/integration/privileged.h"
#include "tests/integration/tcp_peers.h"
#include "tests/unit/fake_map_reader.h"
#include "tests/unit/tick_clock.h"

namespace execflow {
namespace {

using Labels = std::vector<std::pair<std::string, std::string>>;

// The address labels only, unless the test chose labels: these tests are
// about bytes per 4-tuple (tests of the workload labels set theirs).
// Reads its close notices unless `notices` is false (as if every one were lost).
std::unique_ptr<TcpCollector> StartTcp(TcpConfig config, Transport transport = Transport::kRingbuf,
                                       bool notices = true,
                                       SeriesTable<tcp_flow_key>::Clock clock = std::chrono::steady_clock::now) {
  if (config.labels == TcpConfig{}.labels) config.labels = {"saddr", "sport", "daddr", "dport"};
  auto c = TcpCollector::Start(config, transport, nullptr, "", std::move(clock));
  EXPECT_TRUE(c.has_value()) << c.error().message;
  if (!c) return nullptr;
  if (notices) {
    (*c)->StartEvents();
  }
  return std::move(*c);
}

std::vector<prometheus::MetricFamily> Collect(TcpCollector& c) {
  int errors = 0;
  auto f = c.Collect(&errors);
  EXPECT_EQ(errors, 0);
  return f;
}

double Bytes(const std::vector<prometheus::MetricFamily>& fams, const Labels& labels) {
  const auto* m = FindSample(fams, "execflow_tcp_sent_bytes_total", labels);
  return m ? m->counter.value : 0;
}

double Received(const std::vector<prometheus::MetricFamily>& fams, const Labels& labels) {
  const auto* m = FindSample(fams, "execflow_tcp_received_bytes_total", labels);
  return m ? m->counter.value : 0;
}

// Waits (bounded) until `server` has read `bytes`.
bool WaitUntilReceived(const SinkServer& server, uint64_t bytes) {
  WaitFor([&] { return server.received() >= bytes; });
  return server.received() == bytes;
}

double TotalBytes(const std::vector<prometheus::MetricFamily>& fams) {
  double t = 0;
  for (const auto& f : fams) {
    if (f.name != "execflow_tcp_sent_bytes_total") continue;
    for (const auto& m : f.metric) t += m.counter.value;
  }
  return t;
}

const prometheus::ClientMetric::Histogram* Histogram(const std::vector<prometheus::MetricFamily>& fams) {
  for (const auto& f : fams) {
    if (f.name == "execflow_tcp_sendmsg_bytes") return &f.metric.at(0).histogram;
  }
  return nullptr;
}

Labels FlowLabels4(const std::string& s, uint16_t sport, const std::string& d, uint16_t dport) {
  return {{"saddr", s}, {"sport", std::to_string(sport)}, {"daddr", d}, {"dport", std::to_string(dport)}};
}

tcp_flow_key Key(int family, const char* saddr, uint16_t sport, const char* daddr, uint16_t dport) {
  tcp_flow_key key{};
  key.family = family == AF_INET ? EXECFLOW_AF_INET : EXECFLOW_AF_INET6;
  inet_pton(family, saddr, key.saddr);
  inet_pton(family, daddr, key.daddr);
  key.sport = sport;
  key.dport = dport;
  key.netns = CurrentNetns();
  key.cgroup_id = CurrentCgroupId();
  return key;
}

// Waits (bounded, without scraping) until the kernel map no longer holds `key`.
bool WaitUntilUntracked(const TcpCollector& c, const tcp_flow_key& key) {
  return WaitFor([&] { return !c.TracksFlow(key); });
}

struct Mode {
  std::string send;  // tcp.hook and tcp.receive_hook
  std::string close;
  Transport transport;
  std::string storage;  // tcp.counter_storage
};
void PrintTo(const Mode& m, std::ostream* os) {
  *os << m.send << "/" << TransportName(m.transport) << "/" << m.storage;
}
std::string ModeName(const ::testing::TestParamInfo<Mode>& info) { return info.param.send + "_" + info.param.storage; }

// Whether socket storage mode must load here, known without the collector: tracing programs may
// use socket storage from 5.11 and exchange atomically from 5.12, and BPF iterators must load
// (hardened kernels refuse them, as this project's CI machine does, with fexit: EPERM). The
// iterator: one that returns at once.
bool KernelHasSocketStorageMode() {
  static const bool has = [] {
    utsname u{};
    int major = 0, minor = 0;
    if (uname(&u) != 0 || std::sscanf(u.release, "%d.%d", &major, &minor) != 2) return false;
    if (major < 5 || (major == 5 && minor < 12)) return false;
    btf* vmlinux = btf__load_vmlinux_btf();
    if (!vmlinux) return false;
    const int id = btf__find_by_name_kind(vmlinux, "bpf_iter_bpf_sk_storage_map", BTF_KIND_FUNC);
    btf__free(vmlinux);
    if (id <= 0) return false;
    const bpf_insn insns[] = {{.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .src_reg = 0, .off = 0, .imm = 0},
                              {.code = BPF_JMP | BPF_EXIT, .dst_reg = 0, .src_reg = 0, .off = 0, .imm = 0}};
    LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_TRACE_ITER,
                .attach_btf_id = static_cast<__u32>(id));
    UniqueFd fd(bpf_prog_load(BPF_PROG_TYPE_TRACING, "probe_iter", "GPL", insns, 2, &opts));
    return fd.get() >= 0;
  }();
  return has;
}

// tp_btf with socket storage (where the kernel has it) and the ring buffer, then with the flow
// map and the perf buffer; the classic tracepoints (flow map only) with the perf buffer. The
// other modes load only on other kernels: tests/vm runs them there.
std::vector<Mode> HostModes() {
  std::vector<Mode> modes{{"tp_btf", "tp_btf", Transport::kPerfbuf, "flow_map"},
                          {"tracepoint", "tracepoint", Transport::kPerfbuf, "flow_map"}};
  if (KernelHasSocketStorageMode()) modes.insert(modes.begin(), {"tp_btf", "tp_btf", Transport::kRingbuf, "socket"});
  return modes;
}

class TcpExactTest : public ::testing::TestWithParam<Mode> {
 protected:
  void SetUp() override {
    EXECFLOW_REQUIRE_PRIVILEGED();
    TcpConfig config;
    config.hook = GetParam().send;
    config.receive_hook = GetParam().send;
    config.close_hook = GetParam().close;
    config.counter_storage = GetParam().storage;
    collector_ = StartTcp(config, GetParam().transport);
    ASSERT_NE(collector_, nullptr);
    ASSERT_EQ(collector_->counter_storage(), GetParam().storage);
  }

  void SendAndCheck(int family, const char* addr) {
    SinkServer server(family, addr);
    ASSERT_TRUE(server.ok());
    uint16_t sport = 0;
    int fd = Connect(addr, server.port(), &sport);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(SendVarying(fd, 1234567));
    const Labels labels = FlowLabels4(addr, sport, addr, server.port());
    // The server's end of the same connection: its reads are its flow's receives.
    const Labels server_end = FlowLabels4(addr, server.port(), addr, sport);
    ASSERT_TRUE(WaitUntilReceived(server, 1234567));
    auto live = Collect(*collector_);
    EXPECT_EQ(Bytes(live, labels), 1234567) << "live flow";
    EXPECT_EQ(Received(live, server_end), 1234567) << "live flow, server end";
    EXPECT_EQ(FindSample(live, "execflow_tcp_received_bytes_total", labels), nullptr)
        << "the client received nothing: no series";
    EXPECT_EQ(FindSample(live, "execflow_tcp_sent_bytes_total", server_end), nullptr)
        << "the server sent nothing: no series";
    const tcp_flow_key key = Key(family, addr, sport, addr, server.port());
    const tcp_flow_key server_key = Key(family, addr, server.port(), addr, sport);
    ASSERT_TRUE(collector_->TracksFlow(key));
    close(fd);
    ASSERT_TRUE(WaitUntilUntracked(*collector_, key)) << "close notice not handled";
    ASSERT_TRUE(WaitUntilUntracked(*collector_, server_key)) << "server end's close notice not handled";
    auto closed = Collect(*collector_);
    EXPECT_EQ(Bytes(closed, labels), 1234567) << "final total after close";
    EXPECT_EQ(Received(closed, server_end), 1234567) << "final total received after close";
  }

  std::unique_ptr<TcpCollector> collector_;
};

TEST_P(TcpExactTest, UsesTheForcedHooks) {
  std::set<std::string> attached;
  for (const auto& p : collector_->Programs()) attached.insert(p.attach_type + " " + p.hook);
  const std::string send = GetParam().send, close = GetParam().close;
  const std::string sock = send == "tp_btf" ? "" : "sock/";
  std::set<std::string> expected{send + " " + sock + "sock_send_length", send + " " + sock + "sock_recv_length",
                                  close + " " + (close == "tp_btf" ? "" : "sock/") + "inet_sock_set_state"};
  if (GetParam().storage == "socket") expected.insert("tp_btf tcp_destroy_sock");
  EXPECT_EQ(attached, expected);
  EXPECT_TRUE(collector_->Ready().has_value());
  const auto fams = Collect(*collector_);
  const auto* storage = FindSample(fams, "execflow_tcp_storage_info", {{"storage", GetParam().storage}});
  ASSERT_NE(storage, nullptr);
  EXPECT_EQ(storage->gauge.value, 1);
}

TEST_P(TcpExactTest, Ipv4LoopbackFlowCountsEveryByte) { SendAndCheck(AF_INET, "127.0.0.1"); }

TEST_P(TcpExactTest, Ipv6LoopbackFlowCountsEveryByte) { SendAndCheck(AF_INET6, "::1"); }

TEST_P(TcpExactTest, Ipv4MappedFlowIsReportedAsIpv4) {
  SinkServer server(AF_INET6, "::");
  ASSERT_TRUE(server.ok());
  uint16_t sport = 0;
  int fd = Connect("::ffff:127.0.0.1", server.port(), &sport);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendVarying(fd, 54321));
  EXPECT_EQ(Bytes(Collect(*collector_), FlowLabels4("127.0.0.1", sport, "127.0.0.1", server.port())), 54321);
  close(fd);
}

TEST_P(TcpExactTest, SendCompletingAfterAResetIsCountedAndLeavesNoEntry) {
  uint16_t sport = 0, dport = 0;
  const ssize_t sent = SendInterruptedByReset(&sport, &dport);
  ASSERT_GT(sent, 0);
  const tcp_flow_key key = Key(AF_INET, "127.0.0.1", sport, "127.0.0.1", dport);
  tcp_flow_key portless = key;  // where the send landed when it keyed on skc_num
  portless.sport = 0;
  EXPECT_TRUE(WaitUntilUntracked(*collector_, key));
  EXPECT_TRUE(WaitUntilUntracked(*collector_, portless))
      << "the send after the close recreated an entry that no close notice removes";
  EXPECT_EQ(Bytes(Collect(*collector_), FlowLabels4("127.0.0.1", sport, "127.0.0.1", dport)), sent);
}

TEST_P(TcpExactTest, PeekedBytesAreCountedOnceWhenRead) {
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_storage ss{};
  socklen_t len = SinkServer::Fill(&ss, "127.0.0.1", 0);
  ASSERT_EQ(bind(lfd, reinterpret_cast<sockaddr*>(&ss), len), 0);
  ASSERT_EQ(listen(lfd, 1), 0);
  getsockname(lfd, reinterpret_cast<sockaddr*>(&ss), &len);
  const uint16_t port = ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  uint16_t sport = 0;
  int fd = Connect("127.0.0.1", port, &sport);
  int peer = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
  close(lfd);
  ASSERT_GE(peer, 0);
  ASSERT_TRUE(SendVarying(fd, 3000));
  char buf[4096];
  size_t peeked = 0, read_total = 0;
  while (peeked < 3000) {  // MSG_WAITALL with MSG_PEEK is not honoured by TCP: loop
    ssize_t n = recv(peer, buf, sizeof(buf), MSG_PEEK);
    ASSERT_GT(n, 0);
    peeked = n;
  }
  while (read_total < 3000) {
    ssize_t n = recv(peer, buf, 3000 - read_total, 0);
    ASSERT_GT(n, 0);
    read_total += n;
  }
  EXPECT_EQ(Received(Collect(*collector_), FlowLabels4("127.0.0.1", port, "127.0.0.1", sport)), 3000);
  close(fd);
  close(peer);
}

TEST_P(TcpExactTest, RawTcpSocketIsNotAFlow) {
  ASSERT_EQ(SendRawTcp("127.0.0.77", 1000), 1000);
  for (const auto& f : Collect(*collector_)) {
    if (f.name != "execflow_tcp_sent_bytes_total") continue;
    for (const auto& m : f.metric) {
      for (const auto& l : m.label) EXPECT_FALSE(l.name == "daddr" && l.value == "127.0.0.77");
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Hooks, TcpExactTest, ::testing::ValuesIn(HostModes()), ModeName);

// The series of one family: label values joined by "|" -> value.
std::map<std::string, double> SeriesOf(const std::vector<prometheus::MetricFamily>& fams, const std::string& name) {
  std::map<std::string, double> m;
  for (const auto& f : fams) {
    if (f.name != name) continue;
    for (const auto& s : f.metric) {
      std::string k;
      for (const auto& l : s.label) k += (k.empty() ? "" : "|") + l.value;
      m[k] = s.counter.value;
    }
  }
  return m;
}

// The direction comes from the kernel's open (connect or accept), in each mode
// of the state hook; every client port of one service edge is one series.
class TcpDirectionTest : public ::testing::TestWithParam<Mode> {};

TEST_P(TcpDirectionTest, EachEndHasTheDirectionItWasOpenedWithAndClientPortsFold) {
  EXECFLOW_REQUIRE_PRIVILEGED();
  SinkServer server;
  // Opened before the collector starts: its direction cannot be known.
  UniqueFd early(Connect("127.0.0.1", server.port()));
  ASSERT_GE(early.get(), 0);
  TcpConfig config;
  config.hook = config.receive_hook = GetParam().send;
  config.close_hook = GetParam().close;
  config.counter_storage = GetParam().storage;
  config.labels = {"daddr", "port", "direction"};
  auto c = StartTcp(config, GetParam().transport);
  ASSERT_NE(c, nullptr);
  constexpr int kConnections = 40;
  uint64_t sent = 0;
  // Half closed, half live at the scrape; closed before the server goes, whose readers wait for them.
  std::vector<UniqueFd> live;
  for (int i = 0; i < kConnections; ++i) {
    UniqueFd fd(Connect("127.0.0.1", server.port()));
    ASSERT_GE(fd.get(), 0);
    ASSERT_TRUE(SendVarying(fd.get(), 100 + i));
    sent += 100 + i;
    if (i % 2) live.push_back(std::move(fd));
  }
  ASSERT_TRUE(SendVarying(early.get(), 5));
  ASSERT_TRUE(WaitUntilReceived(server, sent + 5));
  const std::string port = std::to_string(server.port());
  const auto fams = Collect(*c);
  EXPECT_EQ(SeriesOf(fams, "execflow_tcp_sent_bytes_total"),
            (std::map<std::string, double>{{"127.0.0.1|" + port + "|out", static_cast<double>(sent)},
                                           {"127.0.0.1||unknown", 5}}));
  // The server's ends were accepted; the early one's server end too was opened before.
  EXPECT_EQ(SeriesOf(fams, "execflow_tcp_received_bytes_total"),
            (std::map<std::string, double>{{"127.0.0.1|" + port + "|in", static_cast<double>(sent)},
                                           {"127.0.0.1||unknown", 5}}));
}

INSTANTIATE_TEST_SUITE_P(Hooks, TcpDirectionTest, ::testing::ValuesIn(HostModes()), ModeName);

// A client of the exporter cannot add series: connections accepted on its own
// port are not flows. Connections to that port from this node's own clients are.
TEST(TcpOwnPort, ConnectionsAcceptedOnTheExportersPortAreNotFlows) {
  EXECFLOW_REQUIRE_PRIVILEGED();
  SinkServer own, other;  // before the clients' fds: those close first
  auto c = StartTcp(TcpConfig{});
  ASSERT_NE(c, nullptr);
  c->IgnoreOwnPorts({own.port()});
  constexpr int kConnections = 50;
  uint64_t sent = 0;
  std::vector<uint16_t> client_ports;
  for (int i = 0; i < kConnections; ++i) {
    uint16_t sport = 0;
    int fd = Connect("127.0.0.1", own.port(), &sport);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(SendVarying(fd, 10 + i));
    sent += 10 + i;
    close(fd);
    client_ports.push_back(sport);
  }
  uint16_t other_sport = 0;
  UniqueFd fd(Connect("127.0.0.1", other.port(), &other_sport));
  ASSERT_TRUE(SendVarying(fd.get(), 1000));
  ASSERT_TRUE(WaitUntilReceived(own, sent));
  ASSERT_TRUE(WaitUntilReceived(other, 1000));
  const auto fams = Collect(*c);
  // Received: only the other server's end.
  EXPECT_EQ(SeriesOf(fams, "execflow_tcp_received_bytes_total"),
            (std::map<std::string, double>{
                {"127.0.0.1|" + std::to_string(other.port()) + "|127.0.0.1|" + std::to_string(other_sport), 1000}}));
  // Sent: the clients' ends, each exact (their local ports are not the exporter's).
  const auto out = SeriesOf(fams, "execflow_tcp_sent_bytes_total");
  EXPECT_EQ(out.size(), kConnections + 1u);
  double to_own = 0;
  for (uint16_t p : client_ports) {
    to_own += Bytes(fams, FlowLabels4("127.0.0.1", p, "127.0.0.1", own.port()));
  }
  EXPECT_EQ(to_own, static_cast<double>(sent));
  // A client whose ephemeral port has the number of an own port (the exporter was
  // down and its port free) is counted: only accepted connections are left out.
  UniqueFd client(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_storage local{};
  socklen_t local_len = SinkServer::Fill(&local, "127.0.0.1", 0);
  ASSERT_EQ(bind(client.get(), reinterpret_cast<sockaddr*>(&local), local_len), 0);
  ASSERT_EQ(getsockname(client.get(), reinterpret_cast<sockaddr*>(&local), &local_len), 0);
  const uint16_t client_port = ntohs(reinterpret_cast<sockaddr_in*>(&local)->sin_port);
  c->IgnoreOwnPorts({own.port(), client_port});
  sockaddr_storage to{};
  socklen_t to_len = SinkServer::Fill(&to, "127.0.0.1", other.port());
  ASSERT_EQ(connect(client.get(), reinterpret_cast<sockaddr*>(&to), to_len), 0);
  ASSERT_TRUE(SendVarying(client.get(), 500));
  ASSERT_TRUE(WaitUntilReceived(other, 1500));
  EXPECT_EQ(Bytes(Collect(*c), FlowLabels4("127.0.0.1", client_port, "127.0.0.1", other.port())), 500);
  // No list: the port is a flow again.
  c->IgnoreOwnPorts({});
  UniqueFd again(Connect("127.0.0.1", own.port()));
  ASSERT_TRUE(SendVarying(again.get(), 3));
  ASSERT_TRUE(WaitUntilReceived(own, sent + 3));
  // The other server's two ends and this one.
  EXPECT_EQ(SeriesOf(Collect(*c), "execflow_tcp_received_bytes_total").size(), 3u);
}

TEST(TcpAuto, ChoosesTheBestAttachableHookAndLogsWhyOthersFailed) {
  EXECFLOW_REQUIRE_PRIVILEGED();
  auto c = StartTcp(TcpConfig{});
  ASSERT_NE(c, nullptr);
  // fexit is refused and kprobes are compiled out on the CI kernel, so auto
  // must end on a tracepoint mode; on kernels with them it picks fexit.
  const std::string mode = c->send_mode();
  EXPECT_TRUE(mode == "fexit" || mode == "kprobe" || mode == "tp_btf") << mode;
  if (mode != "fexit") {
    EXPECT_FALSE(c->rejected_hooks().empty());
  }
  EXPECT_EQ(c->counter_storage(), mode != "kprobe" && KernelHasSocketStorageMode() ? "socket" : "flow_map");
}

// Socket storage mode where the kernel has what it needs, else a refusal that says which
// program the kernel refused, and auto counting in the flow map.
TEST(TcpSocketStorage, LoadsWhereTheKernelHasItElseIsRefusedAndAutoUsesTheFlowMap) {
  EXECFLOW_REQUIRE_PRIVILEGED();
  TcpConfig config;
  config.counter_storage = "socket";
  auto forced = TcpCollector::Start(config);
  auto automatic = StartTcp(TcpConfig{});
  ASSERT_NE(automatic, nullptr);
  if (KernelHasSocketStorageMode()) {
    ASSERT_TRUE(forced.has_value()) << forced.error().message;
    EXPECT_EQ((*forced)->counter_storage(), "socket");
    EXPECT_EQ(automatic->counter_storage(), automatic->send_mode() == "kprobe" ? "flow_map" : "socket");
    return;
  }
  ASSERT_FALSE(forced.has_value());
  EXPECT_TRUE(forced.error().message.starts_with("tcp.counter_storage socket: ")) << forced.error().message;
  EXPECT_EQ(automatic->counter_storage(), "flow_map");
}

// A send that races its socket's close (it ends between the state tracepoint and the state's
// change) leaves bytes in the socket's storage that the close did not move. Put there by hand
// on a reset socket this test still holds, they are moved once: by the next scrape (which
// takes the flow, the socket being closed), or when the socket goes (tcp_destroy_sock).
class TcpRacedCloseTest : public ::testing::TestWithParam<bool> {};

TEST_P(TcpRacedCloseTest, BytesLeftInAClosedSocketsStorageAreCountedOnce) {
  EXECFLOW_REQUIRE_PRIVILEGED();
  const bool scrape_first = GetParam();
  TcpConfig config;
  config.counter_storage = "socket";
  auto c = StartTcp(config);
  ASSERT_NE(c, nullptr);
  UniqueFd lfd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_storage ss{};
  socklen_t len = SinkServer::Fill(&ss, "127.0.0.1", 0);
  ASSERT_EQ(bind(lfd.get(), reinterpret_cast<sockaddr*>(&ss), len), 0);
  ASSERT_EQ(listen(lfd.get(), 1), 0);
  getsockname(lfd.get(), reinterpret_cast<sockaddr*>(&ss), &len);
  const uint16_t port = ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  uint16_t sport = 0;
  UniqueFd fd(Connect("127.0.0.1", port, &sport));
  UniqueFd peer(accept4(lfd.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_GE(peer.get(), 0);
  ASSERT_TRUE(SendVarying(fd.get(), 1000));
  const Labels labels = FlowLabels4("127.0.0.1", sport, "127.0.0.1", port);
  const tcp_flow_key key = Key(AF_INET, "127.0.0.1", sport, "127.0.0.1", port);
  EXPECT_EQ(Bytes(Collect(*c), labels), 1000);
  ASSERT_TRUE(c->TracksFlow(key));
  // The peer resets: this end reaches TCP_CLOSE, its close notice takes the flow, and this fd
  // keeps the socket (and its storage) alive.
  linger lg{1, 0};
  ASSERT_EQ(setsockopt(peer.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
  peer.Reset();
  ASSERT_TRUE(WaitUntilUntracked(*c, key));
  ASSERT_TRUE(c->PutSocketBytes(fd.get(), tcp_sock_bytes{.sent = 777, .pad = {}, .received = 55}));
  if (scrape_first) {
    const auto fams = Collect(*c);
    EXPECT_EQ(Bytes(fams, labels), 1777);
    EXPECT_EQ(Received(fams, labels), 55);
    EXPECT_FALSE(c->TracksFlow(key)) << "the scrape saw the socket closed: the flow is taken";
    fd.Reset();
  } else {
    fd.Reset();  // the socket goes: its storage's last bytes move
    ASSERT_TRUE(WaitFor([&] { return Bytes(Collect(*c), labels) == 1777; })) << Bytes(Collect(*c), labels);
    EXPECT_TRUE(WaitUntilUntracked(*c, key));
  }
  const auto after = Collect(*c);
  EXPECT_EQ(Bytes(after, labels), 1777) << "counted once";
  EXPECT_EQ(Received(after, labels), 55);
}

// Only where the kernel has socket storage mode (tests/vm runs it there).
INSTANTIATE_TEST_SUITE_P(SocketStorage, TcpRacedCloseTest,
                         ::testing::ValuesIn(KernelHasSocketStorageMode() ? std::vector<bool>{true, false}
                                                                          : std::vector<bool>{}),
                         [](const auto& info) { return info.param ? "MovedByTheScrape" : "MovedAtDestruction"; });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(TcpRacedCloseTest);

TEST(TcpLifecycle, ClosedFlowIsExportedForItsRetentionThenRemovedAndItsKernelEntryFreed) {
  EXECFLOW_REQUIRE_PRIVILEGED();
  TcpConfig config;
  // The tables' clock moves 1 s per scrape (two tables read it): a retention of 3 s is 3 scrapes.
  config.closed_flow_retention = std::chrono::seconds(3);
  auto c = StartTcp(config, Transport::kRingbuf, true, TickPerScrape(2));
  ASSERT_NE(c, nullptr);
  SinkServer server;
  uint16_t sport = 0;
  int fd = Connect("127.0.0.1", server.port(), &sport);
  ASSERT_TRUE(SendVarying(fd, 1000));
  const Labels labels = FlowLabels4("127.0.0.1", sport, "127.0.0.1", server.port());
  EXPECT_EQ(Bytes(Collect(*c), labels), 1000);
  const tcp_flow_key key = Key(AF_INET, "127.0.0.1", sport, "127.0.0.1", server.port());
  ASSERT_TRUE(c->TracksFlow(key));
  const double closed_before = FindSample(Collect(*c), "execflow_tcp_flows_closed_total", {})->counter.value;
  close(fd);
  ASSERT_TRUE(WaitUntilUntracked(*c, key)) << "kernel entry not freed after close";
  auto first = Collect(*c);
  EXPECT_EQ(Bytes(first, labels), 1000) << "the first scrape after close shows the final total";
  EXPECT_GE(FindSample(first, "execflow_tcp_flows_closed_total", {})->counter.value, closed_before + 1);
  EXPECT_EQ(Bytes(Collect(*c), labels), 1000) << "another scraper right after still sees it";
  EXPECT_EQ(Bytes(Collect(*c), labels), 1000) << "2 s after the first";
  EXPECT_EQ(Bytes(Collect(*c), labels), 1000) << "3 s after the first";
  EXPECT_EQ(FindSample(Collect(*c), "execflow_tcp_sent_bytes_total", labels), nullptr)
      << "a scrape after the retention no longer shows it";
}

// A close notice the ring buffer cannot hold (or that no process was there to
// read) used to leave its flow in the kernel map, and in the pinned state,
// for good. The flow is marked closed in the map, and the next scrape takes it.
TEST(TcpLifecycle, ClosesWhoseNoticesAreLostAreTakenByTheNextScrape) {
  EXECFLOW_REQUIRE_PRIVILEGED();
  TcpConfig config;
  config.labels = {"daddr", "dport"};
  auto c = StartTcp(config, Transport::kRingbuf, /*notices=*/false);
  ASSERT_NE(c, nullptr);
  SinkServer server;
  const double dropped_before =
      FindSample(Collect(*c), "execflow_tcp_close_events_dropped_total", {})->counter.value;
  // 2 notices per connection (both ends sent or received): more than the ring holds.
  constexpr int kConnections = 3000;
  std::vector<tcp_flow_key> keys;
  for (int i = 0; i < kConnections; ++i) {
    uint16_t sport = 0;
    int fd = Connect("127.0.0.1", server.port(), &sport);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(SendVarying(fd, 1 + i % 7));
    close(fd);
    keys.push_back(Key(AF_INET, "127.0.0.1", sport, "127.0.0.1", server.port()));
  }
  uint64_t sent = 0;
  for (int i = 0; i < kConnections; ++i) sent += 1 + i % 7;
  ASSERT_TRUE(WaitUntilReceived(server, sent));
  // Each client end reaches TCP_CLOSE after the FIN handshake: wait until all are marked.
  auto all_marked = [&] {
    for (const auto& k : keys) {
      auto v = c->KernelFlow(k);
      if (!v || !v->closed) return false;
    }
    return true;
  };
  if (!WaitFor(all_marked)) {
    int absent = 0, open = 0;
    for (const auto& k : keys) {
      auto v = c->KernelFlow(k);
      absent += !v;
      open += v && !v->closed;
    }
    std::string misses;
    for (const auto& p : c->Programs()) {
      auto stats = ReadRunStats(p.fd);
      if (stats) misses += " " + p.program + "=" + std::to_string(stats->recursion_misses);
    }
    FAIL() << absent << " flows absent and " << open << " not marked closed; server closed "
           << server.closed() << " of " << kConnections << "; programs' skipped runs:" << misses;
  }
  auto fams = Collect(*c);
  EXPECT_GT(FindSample(fams, "execflow_tcp_close_events_dropped_total", {})->counter.value, dropped_before)
      << "the ring buffer overflowed";
  const Labels labels = {{"daddr", "127.0.0.1"}, {"dport", std::to_string(server.port())}};
  EXPECT_EQ(Bytes(fams, labels), static_cast<double>(sent));
  int left = 0;
  for (const auto& k : keys) left += c->TracksFlow(k);
  EXPECT_EQ(left, 0) << "closed flows left in the kernel map";
  EXPECT_EQ(Bytes(Collect(*c), labels), static_cast<double>(sent));
}

// Before 5.14 a take is a lookup then a delete, and a send that completes on a
// closed socket (after an RST) between the two would be lost: closed flows are
// taken only by the second scrape that sees them closed, not at their notice.
TEST(TcpLifecycle, WithoutLookupAndDeleteClosedFlowsLeaveAtTheSecondScrape) {
  EXECFLOW_REQUIRE_PRIVILEGED();
  auto c = StartTcp(TcpConfig{});
  ASSERT_NE(c, nullptr);
  c->UseLookupThenDelete();
  SinkServer server;
  uint16_t sport = 0;
  int fd = Connect("127.0.0.1", server.port(), &sport);
  ASSERT_TRUE(SendVarying(fd, 4321));
  close(fd);
  const tcp_flow_key key = Key(AF_INET, "127.0.0.1", sport, "127.0.0.1", server.port());
  auto marked = [&] { auto v = c->KernelFlow(key); return v && v->closed; };
  ASSERT_TRUE(WaitFor(marked)) << "its close notice did not take it: only a scrape may";
  const Labels labels = FlowLabels4("127.0.0.1", sport, "127.0.0.1", server.port());
  EXPECT_EQ(Bytes(Collect(*c), labels), 4321);
  EXPECT_TRUE(c->TracksFlow(key)) << "the first scrape that sees it closed leaves it";
  EXPECT_EQ(Bytes(Collect(*c), labels), 4321);
  EXPECT_FALSE(c->TracksFlow(key)) << "the second one takes it";
  EXPECT_EQ(Bytes(Collect(*c), labels), 4321);
}

TEST(TcpCardinality, ChurnWithoutSportIsExactAndNeverDecreases) {
  EXECFLOW_REQUIRE_PRIVILEGED();
  TcpConfig config;
  config.labels = {"saddr", "daddr", "dport"};
  auto c = StartTcp(config);
  ASSERT_NE(c, nullptr);
  SinkServer server;
  const Labels labels = {{"saddr", "127.0.0.1"}, {"daddr", "127.0.0.1"}, {"dport", std::to_string(server.port())}};

  std::atomic<bool> done{false};
  std::atomic<int> scrape_count{0};
  std::vector<std::map<std::string, double>> scrapes;
  std::thread scraper([&] {
    while (!done) {
      std::map<std::string, double> s;
      for (const auto& f : Collect(*c)) {
        if (f.name != "execflow_tcp_sent_bytes_total") continue;
        for (const auto& m : f.metric) {
          std::string k;
          for (const auto& l : m.label) k += l.name + "=" + l.value + ",";
          s[k] = m.counter.value;
        }
      }
      scrapes.push_back(std::move(s));
      ++scrape_count;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  uint64_t expected = 0;
  for (int i = 0; i < 2000; ++i) {
    if (i % 200 == 0) {  // however fast the machine, scrapes interleave with the churn
      const int seen = scrape_count;
      WaitFor([&] { return scrape_count != seen; });
    }
    int fd = Connect("127.0.0.1", server.port());
    ASSERT_GE(fd, 0);
    const uint64_t n = 1 + (i * 7919) % 5000;
    ASSERT_TRUE(SendVarying(fd, n));
    expected += n;
    close(fd);
  }
  done = true;
  scraper.join();
  // Bounded wait for the last close notices; the sum is exact either way.
  double got = 0;
  WaitFor([&] {
    got = Bytes(Collect(*c), labels);
    return got == static_cast<double>(expected);
  });
  EXPECT_EQ(got, static_cast<double>(expected));
  ASSERT_GE(scrapes.size(), 10u);
  // Every series, compared across every pair of scrapes it appears in.
  std::map<std::string, double> high;
  for (size_t i = 0; i < scrapes.size(); ++i) {
    for (const auto& [k, v] : scrapes[i]) {
      if (high.count(k)) {
        EXPECT_GE(v, high[k]) << k << " decreased at scrape " << i;
      }
      high[k] = std::max(high[k], v);
    }
  }
}

// Reads `a` and `b` until no byte moved between two reads of `b`, so both
// saw the same kernel state.
std::pair<double, double> StableTotals(TcpCollector& a, TcpCollector& b) {
  for (int i = 0; i < 200; ++i) {
    const double b1 = TotalBytes(Collect(b));
    const double a1 = TotalBytes(Collect(a));
    const double b2 = TotalBytes(Collect(b));
    if (b1 == b2) return {a1, b1};
  }
  ADD_FAILURE() << "TCP traffic never paused for a stable read";
  return {0, 0};
}

TEST(TcpCardinality, FullKernelMapKeepsTheTotalExact) {
  EXECFLOW_REQUIRE_PRIVILEGED();
  // Other processes' flows close during the test: both keep every closed
  // series (5 minutes by default), so neither total drops one the other still holds.
  TcpConfig keep;
  TcpConfig small = keep;
  small.max_flows = 64;
  auto tiny = StartTcp(small);
  auto reference = StartTcp(keep);  // sees every flow on the machine
  ASSERT_NE(tiny, nullptr);
  ASSERT_NE(reference, nullptr);
  SinkServer server;
  auto [tiny0, ref0] = StableTotals(*tiny, *reference);

  std::vector<int> fds;
  std::vector<uint16_t> sports;
  uint64_t sent = 0;
  for (int i = 0; i < 200; ++i) {
    uint16_t sport = 0;
    int fd = Connect("127.0.0.1", server.port(), &sport);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(SendVarying(fd, 1000 + i));
    sent += 1000 + i;
    fds.push_back(fd);
    sports.push_back(sport);
  }
  auto [tiny1, ref1] = StableTotals(*tiny, *reference);
  auto fams = Collect(*tiny);
  EXPECT_EQ(FindSample(fams, "execflow_bpf_map_entries", {{"map", "tcp_flows"}})->gauge.value, 64);
  EXPECT_GT(FindSample(fams, "execflow_bpf_map_update_failures_total", {{"map", "tcp_flows"}})->counter.value, 0);
  EXPECT_GT(Bytes(fams, {{"saddr", "other"}, {"sport", "other"}, {"daddr", "other"}, {"dport", "other"}}), 0);
  // Both collectors count every byte; the small one folds what has no room.
  EXPECT_EQ(tiny1 - tiny0, ref1 - ref0);
  EXPECT_GE(ref1 - ref0, static_cast<double>(sent));
  // The reference has room for each of our flows, to the byte.
  auto ref = Collect(*reference);
  for (int i = 0; i < 200; ++i) {
    EXPECT_EQ(Bytes(ref, FlowLabels4("127.0.0.1", sports[i], "127.0.0.1", server.port())), 1000 + i);
  }
  for (int fd : fds) close(fd);
}

TEST(TcpCardinality, MaxSeriesFoldsIntoOtherAndCountsFoldedFlows) {
  EXECFLOW_REQUIRE_PRIVILEGED();
  TcpConfig config;
  config.max_series = 5;
  auto c = StartTcp(config);
  ASSERT_NE(c, nullptr);
  SinkServer server;
  std::vector<int> fds;
  for (int i = 0; i < 20; ++i) {
    int fd = Connect("127.0.0.1", server.port());
    ASSERT_TRUE(SendVarying(fd, 100));
    fds.push_back(fd);
  }
  auto fams = Collect(*c);
  size_t series = 0;
  for (const auto& f : fams) {
    if (f.name == "execflow_tcp_sent_bytes_total") series = f.metric.size();
  }
  EXPECT_EQ(series, 6u);  // 5 flows with their own series + "other"
  EXPECT_GE(FindSample(fams, "execflow_tcp_folded_flows", {})->gauge.value, 15);
  EXPECT_GE(Bytes(fams, {{"saddr", "other"}, {"sport", "other"}, {"daddr", "other"}, {"dport", "other"}}), 1500);
  for (int fd : fds) close(fd);
}

TEST(TcpHistogram, SendsOfKnownSizesLandInTheirBuckets) {
  EXECFLOW_REQUIRE_PRIVILEGED();
  auto c = StartTcp(TcpConfig{});
  ASSERT_NE(c, nullptr);
  SinkServer server;
  int fd = Connect("127.0.0.1", server.port());
  ASSERT_GE(fd, 0);
  // size -> bucket le (slots round up)
  const std::vector<std::pair<size_t, double>> sends = {
      {1, 1}, {2, 2}, {3, 4}, {64, 64}, {65, 128}, {1000, 1024}, {65536, 65536}, {100000, 131072}};
  std::vector<char> buf(100000, 'y');
  // Other TCP traffic on the machine lands in the same histogram: retry until
  // a round saw only our sends.
  for (int attempt = 0; attempt < 20; ++attempt) {
    auto before = *Histogram(Collect(*c));
    for (const auto& [size, le] : sends) ASSERT_EQ(write(fd, buf.data(), size), static_cast<ssize_t>(size));
    auto after = *Histogram(Collect(*c));
    if (after.sample_count - before.sample_count != sends.size()) continue;
    std::map<double, uint64_t> want;  // le -> new observations at or below it
    for (const auto& b : after.bucket) {
      for (const auto& [size, le] : sends) want[b.upper_bound] += le <= b.upper_bound;
    }
    for (size_t i = 0; i < after.bucket.size(); ++i) {
      EXPECT_EQ(after.bucket[i].cumulative_count - before.bucket[i].cumulative_count,
                want[after.bucket[i].upper_bound])
          << "le=" << after.bucket[i].upper_bound;
    }
    double sum = 0;
    for (const auto& [size, le] : sends) sum += size;
    EXPECT_EQ(after.sample_sum - before.sample_sum, sum);
    close(fd);
    return;
  }
  close(fd);
  FAIL() << "other TCP traffic interfered with every attempt";
}

// Two hosts in their own network namespaces, joined by a veth pair.
class VethPair {
 public:
  VethPair() {
    const std::string id = std::to_string(getpid() % 100000);
    a_ = "efa" + id;
    b_ = "efb" + id;
    ok_ = Sh("ip netns add " + a_) && Sh("ip netns add " + b_) &&
          Sh("ip link add " + a_ + " netns " + a_ + " type veth peer name " + b_ + " netns " + b_) &&
          Sh("ip -n " + a_ + " addr add 10.199.0.1/30 dev " + a_) &&
          Sh("ip -n " + b_ + " addr add 10.199.0.2/30 dev " + b_) &&
          Sh("ip -n " + a_ + " link set " + a_ + " up") && Sh("ip -n " + b_ + " link set " + b_ + " up") &&
          Sh("ip -n " + a_ + " link set lo up") && Sh("ip -n " + b_ + " link set lo up");
  }
  ~VethPair() {
    Sh("ip netns del " + a_ + " 2>/dev/null");
    Sh("ip netns del " + b_ + " 2>/dev/null");
  }
  bool ok() const { return ok_; }
  // Runs fn in a child process inside namespace a or b; returns its exit code.
  int In(bool a, const std::function<int()>& fn) {
    pid_t pid = fork();
    if (pid == 0) {
      int fd = open(("/var/run/netns/" + (a ? a_ : b_)).c_str(), O_RDONLY);
      if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) _exit(100);
      _exit(fn());
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
  }

 private:
  static bool Sh(const std::string& cmd) { return std::system(cmd.c_str()) == 0; }
  std::string a_, b_;
  bool ok_ = false;
};

TEST(TcpVeth, BytesBetweenNamespacesCarryTheirAddressesAndPorts) {
  EXECFLOW_REQUIRE_PRIVILEGED();
  auto c = StartTcp(TcpConfig{});
  ASSERT_NE(c, nullptr);
  VethPair net;
  ASSERT_TRUE(net.ok()) << "ip netns / veth setup failed";
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  // Host b listens on 10.199.0.2:7070; host a sends 777,777 bytes from port 40404.
  pid_t server = fork();
  if (server == 0) {
    int fd = open(("/var/run/netns/efb" + std::to_string(getppid() % 100000)).c_str(), O_RDONLY);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) _exit(100);
    SinkServer s(AF_INET, "10.199.0.2");
    if (!s.ok()) _exit(101);
    uint16_t port = s.port();
    if (write(pipefd[1], &port, sizeof(port)) != sizeof(port)) _exit(102);
    WaitFor([&] { return s.received() >= 777777; });
    _exit(s.received() == 777777 ? 0 : 103);
  }
  uint16_t port = 0;
  ASSERT_EQ(read(pipefd[0], &port, sizeof(port)), static_cast<ssize_t>(sizeof(port)));
  const int client = net.In(true, [&] {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in me{};
    me.sin_family = AF_INET;
    me.sin_port = htons(40404);
    inet_pton(AF_INET, "10.199.0.1", &me.sin_addr);
    if (bind(fd, reinterpret_cast<sockaddr*>(&me), sizeof(me)) != 0) return 1;
    sockaddr_storage ss{};
    socklen_t len = SinkServer::Fill(&ss, "10.199.0.2", port);
    if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) return 2;
    if (!SendVarying(fd, 777777)) return 3;
    close(fd);
    return 0;
  });
  EXPECT_EQ(client, 0);
  int status = 0;
  waitpid(server, &status, 0);
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(Bytes(Collect(*c), FlowLabels4("10.199.0.1", 40404, "10.199.0.2", port)), 777777);
}

// kprobes may be compiled out (attach fails), but loading runs the verifier
// on the programs this kernel cannot attach, with either transport. Where
// they attach, tests/vm checks them exactly.
class TcpKprobeVerifierTest : public ::testing::TestWithParam<bool> {};

TEST_P(TcpKprobeVerifierTest, KprobeProgramsPassTheVerifier) {
  EXECFLOW_REQUIRE_PRIVILEGED();
  QuietLibbpf quiet;
  tcp_bpf* s = tcp_bpf::open();
  ASSERT_NE(s, nullptr);
  s->rodata->targ_perfbuf = GetParam();
  bpf_program* p;
  bpf_object__for_each_program(p, s->obj) {
    bpf_program__set_autoload(p, std::string(bpf_program__section_name(p)).find("kprobe/") != std::string::npos ||
                                     std::string(bpf_program__section_name(p)).find("kretprobe/") != std::string::npos);
  }
  EXPECT_EQ(tcp_bpf::load(s), 0) << std::strerror(errno);
  tcp_bpf::destroy(s);
}

INSTANTIATE_TEST_SUITE_P(Transports, TcpKprobeVerifierTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "perfbuf" : "ringbuf"; });

}  // namespace
}  // namespace execflow
