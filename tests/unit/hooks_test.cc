#include "exporter/bpf/hooks.h"

#include <gtest/gtest.h>

namespace execflow {
namespace {

const HookGroup kGroup{"tcp send", {{"fexit", {"f"}}, {"kprobe", {"k", "kr"}}, {"tracepoint", {"t"}}}, true};

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

TEST(ChooseHook, UnknownForcedModeIsAnError) {
  auto c = ChooseHook(kGroup, "uprobe", [](const HookVariant&) -> Result<void> { return {}; });
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().message,
            "tcp send hook 'uprobe' is not one of: auto, fexit, kprobe, tracepoint");
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
