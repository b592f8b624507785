#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "exporter/common/result.h"

namespace execflow {

// One way to hook an event: the BPF programs (by name) that are loaded and
// attached together, e.g. {"tcp_sendmsg_kprobe", "tcp_sendmsg_kretprobe"}.
struct HookVariant {
  std::string mode;  // what the config calls it: "tp_btf", "tracepoint", ...
  std::vector<std::string> programs;
};

// Variants of one hook in order of preference. The group's mode is set by
// its config key, or, for a group that `follows` another, is that group's
// chosen mode (tcp sendpage takes tcp send's; a mode it lacks means none, and
// so does a function this kernel does not have: ENOENT or ESRCH).
// An optional group may end with no variant (its feature is then off, and
// the log says why). A group that `serves` others is tried ("auto") only
// when one of them chose `serves_mode`, and is left out otherwise.
struct HookGroup {
  std::string name;        // "exec", "tcp send", ...
  std::string config_key;  // "tcp.hook"; empty when the group follows another
  std::string follows;     // name of the group whose mode this one takes
  std::vector<HookVariant> variants;
  bool required = true;
  std::vector<std::string> serves = {};  // {"tcp send", "tcp receive"}
  std::string serves_mode = {};          // "kprobe"
};

// Every hook of each collector, groups in attach order: the one table the
// collectors, the config's validation and the docs read. Each mode needs
// (kernel BTF for all):
//   tp_btf      BTF-typed tracepoints (5.5+) and the tracepoint itself
//   tracepoint  tracefs mounted and the tracepoint itself
//   fexit       BPF trampolines (x86-64 5.5+, arm64 6.0+), not refused by lockdown or LSMs
//   kprobe      CONFIG_KPROBES and tracefs (kretprobes go through tracefs kprobe events)
// sock/sock_send_length exists from 6.3; tcp_sendpage until 6.4.
// `recvmsg_args`: how many arguments the running kernel's tcp_recvmsg has (its
// BTF): 6 before 5.19 (nonblock), 5 from 5.19, 4 in 7.2 (no addr_len). Each
// prototype has its own fexit program; where a longer one loads, a shorter one
// loads too (reading an argument as the return value), so trying cannot choose.
const std::vector<HookGroup>& ExecHooks();
const std::vector<HookGroup>& TcpHooks(int recvmsg_args = 5);
const std::vector<HookGroup>& CgroupHooks();
const HookGroup& FindHookGroup(const std::vector<HookGroup>& groups, std::string_view name);

// Names of the modes of a group, for config validation and messages.
std::vector<std::string> HookModes(const HookGroup& group);

struct HookChoice {
  const HookGroup* group = nullptr;
  const HookVariant* variant = nullptr;  // null: optional group, nothing worked (or off)
  std::vector<std::string> rejected;     // "tp_btf: load ...: Permission denied"
};

using TryVariant = std::function<Result<void>(const HookVariant&)>;

// Tries the variants of `group` in order (only `forced` unless it is "auto")
// with `try_variant`, which loads and attaches for real, and returns the first
// that works. Never compares kernel versions: the kernel answers. "off"
// switches an optional group off; an optional group on "auto" may end with
// nothing, but a forced mode that does not attach is an error in any group.
Result<HookChoice> ChooseHook(const HookGroup& group, std::string_view forced,
                              const TryVariant& try_variant);

// A choice for every group, in order: forced modes by config key ("auto"
// where absent), followers take their leader's mode.
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
