#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "exporter/bpf/result.h"

namespace execflow {

// One way to hook an event: the BPF programs (by name) that are loaded and
// attached together, e.g. {"tcp_sendmsg_kprobe", "tcp_sendmsg_kretprobe"}.
struct HookVariant {
  std::string mode;  // what the config calls it: "tp_btf", "tracepoint", ...
  std::vector<std::string> programs;
};

// Variants of one hook in order of preference. An optional group may end up
// with no variant (the feature is then off and says so in the log).
struct HookGroup {
  std::string name;  // "exec", "exec failures", ...
  std::vector<HookVariant> variants;
  bool required = true;
};

struct HookChoice {
  const HookVariant* variant = nullptr;  // null: optional group, nothing worked
  std::vector<std::string> rejected;     // "tp_btf: load ...: Permission denied"
};

// Tries the variants of `group` in order (only `forced` unless it is "auto")
// with `try_variant`, which loads and attaches for real, and returns the first
// that works. Never compares kernel versions: the kernel answers.
Result<HookChoice> ChooseHook(
    const HookGroup& group, std::string_view forced,
    const std::function<Result<void>(const HookVariant&)>& try_variant);

// Names of the modes of a group, for config validation and messages.
std::vector<std::string> HookModes(const HookGroup& group);

// "tp_btf/sched_process_exec" -> {"tp_btf", "sched_process_exec"};
// "tracepoint/sched/sched_process_exec" -> {"tracepoint", "sched/sched_process_exec"}.
struct SectionParts {
  std::string attach_type;
  std::string hook;
};
SectionParts SplitSection(std::string_view section);

}  // namespace execflow
