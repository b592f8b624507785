// The perf buffer transport is for kernels without a ring buffer (before 5.8),
// and the exporter needs 5.5 (README, Requirements): what the programs call
// on that path must be helpers 5.5 has. The verifier drops the other
// transport's branch, so the helper calls left in a loaded program are the
// ones its transport makes; each resolves through kallsyms to the kernel
// function that implements it, named bpf_<helper> for most helpers.
#include <linux/bpf.h>
#include <bpf/bpf.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "exporter/collectors/exec_collector.h"
#include "exporter/collectors/tcp_collector.h"
#include "tests/integration/privileged.h"

namespace execflow {
namespace {

// Helper names in the order of their ids: the UAPI header lists them as added.
#define EXECFLOW_HELPER_NAME(name) #name  // the list puts the commas
const std::vector<std::string> kHelperNames = {__BPF_FUNC_MAPPER(EXECFLOW_HELPER_NAME)};
#undef EXECFLOW_HELPER_NAME

// The last helper Linux 5.5 added (bpf_probe_read_kernel_str; 5.6 added
// bpf_tcp_send_ack next).
constexpr int kLastHelperOf55 = BPF_FUNC_probe_read_kernel_str;

// Kernel text symbols by address; 0 entries when kallsyms hides addresses.
std::map<uint64_t, std::string> KernelSymbols() {
  std::map<uint64_t, std::string> out;
  std::ifstream in("/proc/kallsyms");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string addr, type, name;
    if (!(f >> addr >> type >> name) || (type != "t" && type != "T")) continue;
    const uint64_t a = std::stoull(addr, nullptr, 16);
    if (a == 0) continue;
    // An alias named after a helper wins over other names at that address.
    auto [it, fresh] = out.emplace(a, name);
    if (!fresh && name.starts_with("bpf_") && !it->second.starts_with("bpf_")) it->second = name;
  }
  return out;
}

// The UAPI helpers (by name, "ktime_get_ns") that a loaded program calls, as
// far as their kernel functions are named after them.
std::set<std::string> HelpersCalled(int prog_fd, const std::map<uint64_t, std::string>& syms,
                                    uint64_t call_base) {
  bpf_prog_info info = {};
  __u32 len = sizeof(info);
  EXPECT_EQ(bpf_obj_get_info_by_fd(prog_fd, &info, &len), 0);
  std::vector<bpf_insn> insns(info.xlated_prog_len / sizeof(bpf_insn));
  info = {};
  info.xlated_prog_len = insns.size() * sizeof(bpf_insn);
  info.xlated_prog_insns = reinterpret_cast<uint64_t>(insns.data());
  len = sizeof(info);
  EXPECT_EQ(bpf_obj_get_info_by_fd(prog_fd, &info, &len), 0);
  std::set<std::string> out;
  for (const bpf_insn& insn : insns) {
    if (insn.code != (BPF_JMP | BPF_CALL) || insn.src_reg != 0) continue;  // helpers only
    auto sym = syms.find(call_base + static_cast<int64_t>(insn.imm));
    if (sym == syms.end() || !sym->second.starts_with("bpf_")) continue;
    const std::string helper = sym->second.substr(4);
    if (std::find(kHelperNames.begin(), kHelperNames.end(), helper) != kHelperNames.end()) out.insert(helper);
  }
  return out;
}

int HelperId(const std::string& name) {
  return static_cast<int>(std::find(kHelperNames.begin(), kHelperNames.end(), name) - kHelperNames.begin());
}

class HelperFloor : public ::testing::Test {
 protected:
  void SetUp() override {
    EXECFLOW_REQUIRE_PRIVILEGED();
    syms_ = KernelSymbols();
    for (const auto& [addr, name] : syms_) {
      if (name == "__bpf_call_base") call_base_ = addr;
    }
    if (call_base_ == 0) GTEST_SKIP() << "/proc/kallsyms shows no addresses (kernel.kptr_restrict)";
  }

  // Every helper each program calls, "program: helper".
  std::set<std::string> Calls(const std::vector<ProgramInfo>& programs) {
    std::set<std::string> out;
    for (const auto& p : programs) {
      for (const auto& h : HelpersCalled(p.fd, syms_, call_base_)) out.insert(p.program + ": " + h);
    }
    return out;
  }

  std::map<uint64_t, std::string> syms_;
  uint64_t call_base_ = 0;
};

// Every hook mode that loads on this kernel (here fexit and kprobes do not;
// the kernel matrix runs this test on 5.10, 6.1 and 6.12, where they do).
TEST_F(HelperFloor, PerfBufferProgramsCallOnlyHelpersOfLinux55) {
  std::set<std::string> calls;
  std::vector<std::string> loaded;
  for (const char* hook : {"tp_btf", "tracepoint"}) {
    for (const char* failures : {"fexit", "tracepoint"}) {
      Config config;
      config.exec.hook = hook;
      config.exec.failures_hook = failures;
      if (auto exec = ExecCollector::Start(config, Transport::kPerfbuf)) {
        calls.merge(Calls((*exec)->Programs()));
        loaded.push_back(std::string("exec ") + hook + " + " + failures);
      }
    }
  }
  for (const char* mode : {"fexit", "kprobe", "tp_btf", "tracepoint"}) {
    TcpConfig tcp;
    tcp.hook = tcp.receive_hook = mode;
    tcp.close_hook = std::string(mode) == "tracepoint" ? "tracepoint" : "tp_btf";
    if (auto flows = TcpCollector::Start(tcp, Transport::kPerfbuf)) {
      calls.merge(Calls((*flows)->Programs()));
      loaded.push_back(std::string("tcp ") + mode);
    }
  }
  std::cout << "loaded with the perf buffer:";
  for (const auto& l : loaded) std::cout << " [" << l << "]";
  std::cout << "\n";
  // The modes every kernel with BTF and tracefs has.
  for (const char* must : {"exec tp_btf + tracepoint", "exec tracepoint + tracepoint"}) {
    EXPECT_NE(std::find(loaded.begin(), loaded.end(), must), loaded.end()) << must;
  }
  std::vector<std::string> newer;
  for (const auto& c : calls) {
    if (HelperId(c.substr(c.find(": ") + 2)) > kLastHelperOf55) newer.push_back(c);
  }
  EXPECT_EQ(newer, std::vector<std::string>{}) << "helpers newer than Linux 5.5 on the perf buffer path";
  // The resolution works: the perf buffer's exec events are stamped with
  // bpf_ktime_get_ns, and the probe reads are found.
  EXPECT_TRUE(calls.contains("exec_btf: ktime_get_ns"));
  EXPECT_TRUE(calls.contains("exec_tp: ktime_get_ns"));
  EXPECT_TRUE(calls.contains("exec_tp: probe_read_kernel_str"));
}

// The ring buffer path may use what 5.8 has, and does: the check above sees it.
TEST_F(HelperFloor, RingBufferExecEventsAreStampedWithTheBootClock) {
  Config config;
  config.exec.failures_hook = "off";
  auto exec = ExecCollector::Start(config, Transport::kRingbuf);
  ASSERT_TRUE(exec.has_value()) << exec.error().message;
  const auto calls = Calls((*exec)->Programs());
  EXPECT_TRUE(calls.contains("exec_btf: ktime_get_boot_ns"));
  EXPECT_GT(HelperId("ktime_get_boot_ns"), kLastHelperOf55);
}

}  // namespace
}  // namespace execflow
