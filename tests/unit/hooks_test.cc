#include "exporter/bpf/hooks.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "exporter/config/config.h"

namespace execflow {
namespace {

const HookGroup kGroup{"tcp send", "tcp.hook", "", {{"fexit", {"f"}}, {"kprobe", {"k", "kr"}}, {"tracepoint", {"t"}}}, true};

// The config checks hook settings against its own list of modes (it is below
// the BPF layer); this keeps that list the hook table's.
TEST(HookTable, TheConfigAcceptsExactlyTheModesOfEachSetting) {
  std::map<std::string, std::vector<std::string>> table;
  for (const auto* groups : {&ExecHooks(), &TcpHooks(), &CgroupHooks()}) {
    for (const auto& g : *groups) {
      if (!g.config_key.empty()) table[g.config_key] = HookModes(g);
    }
  }
  EXPECT_EQ(table, HookSettingModes());
}

TEST(ChooseHook, TakesTheFirstThatWorksAndRecordsWhyOthersFailed) {
  std::vector<std::string> tried;
  auto c = ChooseHook(kGroup, "auto", [&](const HookVariant& v) -> Result<void> {
    tried.push_back(v.mode);
    if (v.mode == "tracepoint") return {};
    return Fail("load " + v.programs[0], 1);
  });
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->variant->mode, "tracepoint");
  EXPECT_EQ(tried, (std::vector<std::string>{"fexit", "kprobe", "tracepoint"}));
  EXPECT_EQ(c->rejected, (std::vector<std::string>{"fexit: load f: Operation not permitted",
                                                   "kprobe: load k: Operation not permitted"}));
}

// arm64 kernels before 6.0 refuse fexit with the kernel's own ENOTSUPP, which the C
// library calls "Unknown error 524".
TEST(ChooseHook, TheKernelsOwnNotSupportedIsSaidInWords) {
  auto c = ChooseHook(kGroup, "fexit", [](const HookVariant& v) -> Result<void> {
    return FailErrno("attach fexit/" + v.programs[0], -524);
  });
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().message,
            "no attachable hook for tcp send (fexit: attach fexit/f: not supported by this kernel (ENOTSUPP, 524))");
}

TEST(ChooseHook, ForcedModeTriesOnlyThatOne) {
  std::vector<std::string> tried;
  auto c = ChooseHook(kGroup, "kprobe", [&](const HookVariant& v) -> Result<void> {
    tried.push_back(v.mode);
    return {};
  });
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->variant->mode, "kprobe");
  EXPECT_EQ(tried, std::vector<std::string>{"kprobe"});
}

TEST(ChooseHook, RequiredGroupWithNothingAttachableFailsWithEveryReason) {
  auto c = ChooseHook(kGroup, "auto", [](const HookVariant& v) -> Result<void> {
    return Fail("attach " + v.mode, 2);
  });
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().message,
            "no attachable hook for tcp send (fexit: attach fexit: No such file or directory; "
            "kprobe: attach kprobe: No such file or directory; tracepoint: attach tracepoint: "
            "No such file or directory)");
}

TEST(ChooseHook, OptionalGroupMayEndWithNothing) {
  HookGroup g = kGroup;
  g.required = false;
  auto c = ChooseHook(g, "auto", [](const HookVariant&) -> Result<void> { return Fail("no"); });
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->variant, nullptr);
  EXPECT_EQ(c->rejected.size(), 3u);
}

TEST(ChooseHook, ForcedModeThatDoesNotAttachIsAnErrorInAnOptionalGroupToo) {
  HookGroup g = kGroup;
  g.required = false;
  auto c = ChooseHook(g, "kprobe", [](const HookVariant&) -> Result<void> { return Fail("no", EPERM); });
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().message, "no attachable hook for tcp send (kprobe: no: Operation not permitted)");
}

TEST(ChooseHook, UnknownForcedModeIsAnError) {
  auto c = ChooseHook(kGroup, "uprobe", [](const HookVariant&) -> Result<void> { return {}; });
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().message,
            "tcp send hook 'uprobe' is not one of: auto, fexit, kprobe, tracepoint");
}

TEST(ChooseHook, OffSwitchesAnOptionalGroupOffWithoutTrying) {
  HookGroup g = kGroup;
  g.required = false;
  int tried = 0;
  auto c = ChooseHook(g, "off", [&](const HookVariant&) -> Result<void> { ++tried; return {}; });
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->variant, nullptr);
  EXPECT_EQ(tried, 0);
  EXPECT_FALSE(ChooseHook(kGroup, "off", [](const HookVariant&) -> Result<void> { return {}; }));
}

// What each kernel of the matrix answers, per program: the plan must follow it.
Result<void> Kernel(const std::vector<std::string>& loads, const HookVariant& v) {
  for (const auto& p : v.programs) {
    if (std::find(loads.begin(), loads.end(), p) == loads.end()) return Fail("load " + p, EINVAL);
  }
  return {};
}

TEST(PlanHooks, TcpOn61TakesFexitForSendsAndSendpageAndTpBtfForCloses) {
  const std::vector<std::string> k61{"tcp_sendmsg_fexit", "tcp_sendpage_fexit", "tcp_sendmsg_kprobe",
                                     "tcp_sendmsg_kretprobe", "tcp_recvmsg_fexit", "tcp_recvmsg_kprobe",
                                     "tcp_recvmsg_kretprobe", "inet_state_btf", "inet_state_tp"};
  auto plan = PlanHooks(TcpHooks(), {}, [&](const HookVariant& v) { return Kernel(k61, v); });
  ASSERT_TRUE(plan.has_value()) << plan.error().message;
  EXPECT_EQ(plan->Programs(),
            (std::vector<std::string>{"tcp_sendmsg_fexit", "tcp_sendpage_fexit", "tcp_recvmsg_fexit",
                                      "inet_state_btf"}));
  EXPECT_EQ(plan->ModeOf("tcp sendpage"), "fexit");
  EXPECT_EQ(plan->ModeOf("tcp receive"), "fexit");
}

// Before 5.19 tcp_recvmsg has a nonblock argument: the fexit program written
// for that prototype, the same modes otherwise.
TEST(PlanHooks, TcpOn510TakesTheFexitProgramOfTheNonblockPrototype) {
  const std::vector<std::string> k510{"tcp_sendmsg_fexit", "tcp_sendpage_fexit", "tcp_recvmsg_fexit",
                                      "tcp_recvmsg_nonblock_fexit", "inet_state_btf"};
  auto plan = PlanHooks(TcpHooks(6), {}, [&](const HookVariant& v) { return Kernel(k510, v); });
  ASSERT_TRUE(plan.has_value()) << plan.error().message;
  EXPECT_EQ(plan->Programs(),
            (std::vector<std::string>{"tcp_sendmsg_fexit", "tcp_sendpage_fexit", "tcp_recvmsg_nonblock_fexit",
                                      "inet_state_btf"}));
  for (int args : {4, 6}) {
    ASSERT_EQ(TcpHooks(args).size(), TcpHooks(5).size());
    for (size_t i = 0; i < TcpHooks(args).size(); ++i) {
      EXPECT_EQ(HookModes(TcpHooks(args)[i]), HookModes(TcpHooks(5)[i])) << TcpHooks(args)[i].name;
    }
  }
}

// Socket storage mode: tracing programs only (the others cannot use socket storage), and the
// close group attaches tcp_destroy_sock's program with the state tracepoint's. On 6.12: fexit
// for sends and receives, tp_btf for the close; forcing a kprobe has nothing to take.
TEST(PlanHooks, SocketStorageModeHasOnlyTracingProgramsAndTheCloseTakesTheDestruction) {
  for (int args : {4, 5, 6}) {
    for (const auto& g : TcpHooks(args, true)) {
      if (g.name == "tcp thread exit") continue;  // serves kprobe modes only: never taken here
      for (const auto& v : g.variants) EXPECT_TRUE(v.mode == "fexit" || v.mode == "tp_btf") << g.name << " " << v.mode;
    }
  }
  const auto& close = FindHookGroup(TcpHooks(5, true), "tcp close");
  ASSERT_EQ(close.variants.size(), 1u);
  EXPECT_EQ(close.variants[0].programs, (std::vector<std::string>{"inet_state_sk_btf", "tcp_destroy_btf"}));
  auto all = [](const HookVariant&) -> Result<void> { return {}; };
  auto plan = PlanHooks(TcpHooks(5, true), {}, all);
  ASSERT_TRUE(plan.has_value()) << plan.error().message;
  EXPECT_EQ(plan->Programs(), (std::vector<std::string>{"tcp_sendmsg_sk_fexit", "tcp_sendpage_sk_fexit",
                                                        "tcp_recvmsg_sk_fexit", "inet_state_sk_btf", "tcp_destroy_btf"}));
  EXPECT_EQ(FindHookGroup(TcpHooks(6, true), "tcp receive").variants[0].programs,
            (std::vector<std::string>{"tcp_recvmsg_nonblock_sk_fexit"}));
  EXPECT_EQ(FindHookGroup(TcpHooks(4, true), "tcp receive").variants[0].programs,
            (std::vector<std::string>{"tcp_recvmsg_noaddr_sk_fexit"}));
  auto kprobe = PlanHooks(TcpHooks(5, true), {{"tcp.hook", "kprobe"}}, all);
  ASSERT_FALSE(kprobe.has_value());
  EXPECT_EQ(kprobe.error().message, "tcp send hook 'kprobe' is not one of: auto, fexit, tp_btf");
}

// 7.2's tcp_recvmsg has no addr_len: the fexit program of that prototype.
TEST(PlanHooks, TcpOn72TakesTheFexitProgramOfTheFourArgumentPrototype) {
  const std::vector<std::string> k72{"tcp_sendmsg_fexit", "tcp_recvmsg_fexit", "tcp_recvmsg_noaddr_fexit",
                                     "inet_state_btf"};
  auto plan = PlanHooks(TcpHooks(4), {}, [&](const HookVariant& v) -> Result<void> {
    if (v.programs[0] == "tcp_sendpage_fexit") return Fail("load tcp_sendpage_fexit", ESRCH);  // gone in 6.5
    return Kernel(k72, v);
  });
  ASSERT_TRUE(plan.has_value()) << plan.error().message;
  EXPECT_EQ(plan->Programs(),
            (std::vector<std::string>{"tcp_sendmsg_fexit", "tcp_recvmsg_noaddr_fexit", "inet_state_btf"}));
}

TEST(PlanHooks, FollowerTakesTheLeadersForcedModeAndNothingWhereItHasNoSuchMode) {
  std::vector<std::string> tried;
  auto all = [&](const HookVariant& v) -> Result<void> {
    tried.push_back(v.mode);
    return {};
  };
  auto kprobe = PlanHooks(
      TcpHooks(), {{"tcp.hook", "kprobe"}, {"tcp.receive_hook", "kprobe"}, {"tcp.close_hook", "tracepoint"}}, all);
  ASSERT_TRUE(kprobe.has_value());
  EXPECT_EQ(kprobe->Programs(),
            (std::vector<std::string>{"tcp_sendmsg_kprobe", "tcp_sendmsg_kretprobe", "tcp_sendpage_kprobe",
                                      "tcp_sendpage_kretprobe", "tcp_recvmsg_kprobe", "tcp_recvmsg_kretprobe",
                                      "inet_state_tp", "thread_exit_btf"}));
  EXPECT_EQ(tried, (std::vector<std::string>{"kprobe", "kprobe", "kprobe", "tracepoint", "tp_btf"}));
  auto tp = PlanHooks(TcpHooks(), {{"tcp.hook", "tp_btf"}, {"tcp.receive_hook", "tp_btf"}}, all);
  ASSERT_TRUE(tp.has_value());
  EXPECT_EQ(tp->ModeOf("tcp sendpage"), "");
  EXPECT_EQ(tp->Programs(), (std::vector<std::string>{"sock_send_btf", "sock_recv_btf", "inet_state_btf"}));
}

// kprobe mode's in-flight entries of exiting threads are taken out in the
// kernel, by a sched_process_exit program loaded with either kprobe mode only.
TEST(PlanHooks, ThreadExitHookComesWithEitherKprobeModeOnly) {
  auto all = [](const HookVariant&) -> Result<void> { return {}; };
  auto fexit = PlanHooks(TcpHooks(), {{"tcp.hook", "fexit"}, {"tcp.receive_hook", "fexit"}}, all);
  ASSERT_TRUE(fexit.has_value());
  EXPECT_EQ(fexit->ModeOf("tcp thread exit"), "");
  EXPECT_EQ(fexit->Programs(),
            (std::vector<std::string>{"tcp_sendmsg_fexit", "tcp_sendpage_fexit", "tcp_recvmsg_fexit",
                                      "inet_state_btf"}));
  for (const auto& [send, receive] : {std::pair{"kprobe", "fexit"}, std::pair{"tp_btf", "kprobe"}}) {
    auto plan = PlanHooks(TcpHooks(), {{"tcp.hook", send}, {"tcp.receive_hook", receive}}, all);
    ASSERT_TRUE(plan.has_value());
    EXPECT_EQ(plan->ModeOf("tcp thread exit"), "tp_btf") << send << "/" << receive;
    EXPECT_EQ(plan->Programs().back(), "thread_exit_btf");
  }
  // Where tp_btf is refused, the classic tracepoint; where neither attaches,
  // kprobe mode would lose track of its misses: an error.
  auto tp = PlanHooks(TcpHooks(), {{"tcp.hook", "kprobe"}}, [](const HookVariant& v) -> Result<void> {
    if (v.programs[0] == "thread_exit_btf") return Fail("load thread_exit_btf", EINVAL);
    return {};
  });
  ASSERT_TRUE(tp.has_value());
  EXPECT_EQ(tp->Programs().back(), "thread_exit_tp");
  auto none = PlanHooks(TcpHooks(), {{"tcp.hook", "kprobe"}}, [](const HookVariant& v) -> Result<void> {
    if (v.programs[0].starts_with("thread_exit")) return Fail("load " + v.programs[0], EINVAL);
    return {};
  });
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.error().message,
            "no attachable hook for tcp thread exit (tp_btf: load thread_exit_btf: Invalid argument; "
            "tracepoint: load thread_exit_tp: Invalid argument)");
}

TEST(PlanHooks, FollowerWhoseFunctionIsGoneIsLeftOutButOneRefusedIsAnError) {
  // 6.5+: tcp_sendpage is gone (fexit: no BTF id, ESRCH; kprobe: ENOENT).
  for (int gone : {ESRCH, ENOENT}) {
    auto plan = PlanHooks(TcpHooks(), {{"tcp.hook", "fexit"}}, [&](const HookVariant& v) -> Result<void> {
      if (v.programs[0] == "tcp_sendpage_fexit") return Fail("load tcp_sendpage_fexit", gone);
      return {};
    });
    ASSERT_TRUE(plan.has_value()) << plan.error().message;
    EXPECT_EQ(plan->Programs(),
              (std::vector<std::string>{"tcp_sendmsg_fexit", "tcp_recvmsg_fexit", "inet_state_btf"}));
    EXPECT_EQ(plan->ModeOf("tcp sendpage"), "");
  }
  // Present but refused (a verifier error): sendfile() bytes would be lost.
  auto refused = PlanHooks(TcpHooks(), {}, [&](const HookVariant& v) -> Result<void> {
    if (v.programs[0] == "tcp_sendpage_fexit") return Fail("load tcp_sendpage_fexit", EACCES);
    return {};
  });
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().message,
            "no attachable hook for tcp sendpage (fexit: load tcp_sendpage_fexit: Permission denied)");
}

TEST(PlanHooks, RejectedNamesTheGroup) {
  auto plan = PlanHooks(ExecHooks(), {{"exec.failures_hook", "off"}},
                        [](const HookVariant& v) -> Result<void> {
                          if (v.mode == "tp_btf") return Fail("load exec_btf", EPERM);
                          return {};
                        });
  ASSERT_TRUE(plan.has_value());
  EXPECT_EQ(plan->Programs(), std::vector<std::string>{"exec_tp"});
  EXPECT_EQ(plan->Rejected(), std::vector<std::string>{"exec: tp_btf: load exec_btf: Operation not permitted"});
  EXPECT_EQ(plan->ModeOf("exec failures"), "");
}

TEST(SplitSection, SplitsAttachTypeFromHook) {
  auto a = SplitSection("tp_btf/sched_process_exec");
  EXPECT_EQ(a.attach_type, "tp_btf");
  EXPECT_EQ(a.hook, "sched_process_exec");
  auto b = SplitSection("tracepoint/sched/sched_process_exec");
  EXPECT_EQ(b.attach_type, "tracepoint");
  EXPECT_EQ(b.hook, "sched/sched_process_exec");
  auto c = SplitSection("tp/syscalls/sys_exit_execve");
  EXPECT_EQ(c.attach_type, "tracepoint");
  EXPECT_EQ(c.hook, "syscalls/sys_exit_execve");
  EXPECT_EQ(SplitSection("kretprobe/tcp_sendmsg").attach_type, "kretprobe");
}

}  // namespace
}  // namespace execflow

namespace execflow {
namespace {

TEST(ChooseHook, CarriesTheErrnoEveryVariantFailedWith) {
  auto same = ChooseHook(kGroup, "auto", [](const HookVariant&) -> Result<void> { return Fail("load", EPERM); });
  ASSERT_FALSE(same.has_value());
  EXPECT_EQ(same.error().err, EPERM);
  int n = 0;
  auto mixed = ChooseHook(kGroup, "auto", [&](const HookVariant&) -> Result<void> {
    return Fail("load", ++n == 1 ? EPERM : ENOENT);
  });
  ASSERT_FALSE(mixed.has_value());
  EXPECT_EQ(mixed.error().err, 0);
}

}  // namespace
}  // namespace execflow
