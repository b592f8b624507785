#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "exporter/common/result.h"

namespace execflow {

// One way to hook an event: programs loaded and attached together (a kprobe and kretprobe).
struct HookVariant {
  std::string mode;  // what the config calls it: "tp_btf", "tracepoint", ...
  std::vector<std::string> programs;
};

// Variants of one hook, preferred first. The mode comes from the config key, or is that of
// the group it `follows` (tcp sendpage takes tcp send's, or none if it lacks that mode or
// the kernel lacks the function: ENOENT, ESRCH). An optional group may end with no variant
// (feature off, the log says why). A group that `serves` others is tried ("auto") only
// when one of them chose `serves_mode`.
struct HookGroup {
  std::string name;        // "exec", "tcp send", ...
  std::string config_key;  // "tcp.hook"; empty when the group follows another
  std::string follows;     // name of the group whose mode this one takes
  std::vector<HookVariant> variants;
  bool required = true;
  std::vector<std::string> serves = {};  // {"tcp send", "tcp receive"}
  std::string serves_mode = {};          // "kprobe"
};

// Every hook of each collector, groups in attach order: the one table that the
// collectors, config validation and docs read. Each mode needs kernel BTF and:
//   tp_btf      BTF-typed tracepoints (5.5+) and the tracepoint itself
//   tracepoint  tracefs mounted and the tracepoint itself
//   fexit       BPF trampolines (x86-64 5.5+, arm64 6.0+), not refused by lockdown or LSMs
//   kprobe      CONFIG_KPROBES and tracefs (kretprobes go through tracefs kprobe events)
// sock/sock_send_length exists from 6.3; tcp_sendpage until 6.4.
// `recvmsg_args`: the arguments of the kernel's tcp_recvmsg, from BTF: 6 before 5.19
// (nonblock), 5 from 5.19, 4 in 7.2 (no addr_len). Each has its own fexit program; a
// program for fewer arguments loads too (reading an argument as the return value), so
// trying cannot choose. `socket_storage`: the hooks of that mode of the TCP collector
// (bpf/tcp.bpf.c), tracing programs only, the close's with tcp_destroy_sock's.
const std::vector<HookGroup>& ExecHooks();
const std::vector<HookGroup>& TcpHooks(int recvmsg_args = 5, bool socket_storage = false);
const std::vector<HookGroup>& CgroupHooks();
const HookGroup& FindHookGroup(const std::vector<HookGroup>& groups, std::string_view name);

std::vector<std::string> HookModes(const HookGroup& group);

struct HookChoice {
  const HookGroup* group = nullptr;
  const HookVariant* variant = nullptr;  // null: optional group, nothing worked (or off)
  std::vector<std::string> rejected;     // "tp_btf: load ...: Permission denied"
};

using TryVariant = std::function<Result<void>(const HookVariant&)>;

// Returns the first variant of `group` (only `forced` unless "auto") that `try_variant`
// really loads and attaches: no kernel version compared. "off" turns an optional group
// off, "auto" may leave it with nothing; a forced mode that fails is an error.
Result<HookChoice> ChooseHook(const HookGroup& group, std::string_view forced,
                              const TryVariant& try_variant);

// A choice per group, in order: `forced` by config key ("auto" if absent), or the leader's.
struct HookPlan {
  std::vector<HookChoice> choices;
  std::vector<std::string> Programs() const;  // of every chosen variant
  std::vector<std::string> Rejected() const;  // "tcp send: fexit: ..."
  // The chosen mode of a group, or "" when it has none.
  std::string ModeOf(std::string_view group) const;
};
Result<HookPlan> PlanHooks(const std::vector<HookGroup>& groups,
                           const std::map<std::string, std::string>& forced,
                           const TryVariant& try_variant);

// "tp_btf/sched_process_exec" -> {"tp_btf", "sched_process_exec"};
// "tracepoint/sched/sched_process_exec" -> {"tracepoint", "sched/sched_process_exec"}.
struct SectionParts {
  std::string attach_type;
  std::string hook;
};
SectionParts SplitSection(std::string_view section);

}  // namespace execflow
