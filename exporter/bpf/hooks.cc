#include "exporter/bpf/hooks.h"

#include <cerrno>
#include <stdexcept>

namespace execflow {

const std::vector<HookGroup>& ExecHooks() {
  static const std::vector<HookGroup> g{
      {"exec", "exec.hook", "", {{"tp_btf", {"exec_btf"}}, {"tracepoint", {"exec_tp"}}}, true},
      // fexit costs only execve; syscall tracepoints put every task on the slow syscall path.
      {"exec failures",
       "exec.failures_hook",
       "",
       {{"fexit", {"execve_exit_fexit", "execveat_exit_fexit"}},
        {"tracepoint", {"execve_enter_tp", "execveat_enter_tp", "execve_exit_tp", "execveat_exit_tp"}}},
       false},
  };
  return g;
}

const std::vector<HookGroup>& CgroupHooks() {
  // Optional: without it, workloads are named by walking cgroupfs.
  static const std::vector<HookGroup> g{
      {"cgroup mkdir", "workloads.hook", "", {{"tp_btf", {"cgroup_mkdir_btf"}}, {"tracepoint", {"cgroup_mkdir_tp"}}}, false},
  };
  return g;
}

namespace {

// Socket storage mode: its own programs (bpf/tcp.bpf.c's *_sk_*), tracing ones only (the
// others cannot use socket storage), and the close's with tcp_destroy_sock's.
std::vector<HookGroup> MakeTcpHooks(const std::string& recvmsg_fexit, bool socket_storage) {
  std::vector<HookVariant> send{{"fexit", {"tcp_sendmsg_fexit"}},
                                {"kprobe", {"tcp_sendmsg_kprobe", "tcp_sendmsg_kretprobe"}},
                                {"tp_btf", {"sock_send_btf"}},
                                {"tracepoint", {"sock_send_tp"}}};
  std::vector<HookVariant> sendpage{{"fexit", {"tcp_sendpage_fexit"}},
                                    {"kprobe", {"tcp_sendpage_kprobe", "tcp_sendpage_kretprobe"}}};
  std::vector<HookVariant> receive{{"fexit", {recvmsg_fexit}},
                                   {"kprobe", {"tcp_recvmsg_kprobe", "tcp_recvmsg_kretprobe"}},
                                   {"tp_btf", {"sock_recv_btf"}},
                                   {"tracepoint", {"sock_recv_tp"}}};
  std::vector<HookVariant> close{{"tp_btf", {"inet_state_btf"}}, {"tracepoint", {"inet_state_tp"}}};
  if (socket_storage) {
    const std::string recvmsg_sk = recvmsg_fexit.substr(0, recvmsg_fexit.size() - 6) + "_sk_fexit";
    send = {{"fexit", {"tcp_sendmsg_sk_fexit"}}, {"tp_btf", {"sock_send_sk_btf"}}};
    sendpage = {{"fexit", {"tcp_sendpage_sk_fexit"}}};
    receive = {{"fexit", {recvmsg_sk}}, {"tp_btf", {"sock_recv_sk_btf"}}};
    close = {{"tp_btf", {"inet_state_sk_btf", "tcp_destroy_btf"}}};
  }
  return {
      {"tcp send", "tcp.hook", "", send, true},
      // Before 6.5 sendfile()/splice() use tcp_sendpage, so function hooks cover it
      // too; sock_send_length (6.3+) fires in sock_sendmsg, which 6.5+ uses for pages.
      {"tcp sendpage", "", "tcp send", sendpage, false},
      // Bytes copied by receive calls (MSG_PEEK excluded).
      {"tcp receive", "tcp.receive_hook", "", receive, true},
      {"tcp close", "tcp.close_hook", "", close, true},
      // kprobe mode: an entry left by a missed kretprobe is removed in the kernel at
      // thread exit (user space in its own PID namespace cannot tell which exited).
      {"tcp thread exit",
       "",
       "",
       {{"tp_btf", {"thread_exit_btf"}}, {"tracepoint", {"thread_exit_tp"}}},
       true,
       {"tcp send", "tcp receive"},
       "kprobe"},
  };
}

}  // namespace

const std::vector<HookGroup>& TcpHooks(int recvmsg_args, bool socket_storage) {
  static const std::vector<HookGroup> tables[2][3] = {
      {MakeTcpHooks("tcp_recvmsg_nonblock_fexit", false), MakeTcpHooks("tcp_recvmsg_fexit", false),
       MakeTcpHooks("tcp_recvmsg_noaddr_fexit", false)},
      {MakeTcpHooks("tcp_recvmsg_nonblock_fexit", true), MakeTcpHooks("tcp_recvmsg_fexit", true),
       MakeTcpHooks("tcp_recvmsg_noaddr_fexit", true)},
  };
  return tables[socket_storage][recvmsg_args == 6 ? 0 : recvmsg_args == 4 ? 2 : 1];
}

const HookGroup& FindHookGroup(const std::vector<HookGroup>& groups, std::string_view name) {
  for (const auto& g : groups) {
    if (g.name == name) return g;
  }
  throw std::logic_error("no hook group " + std::string(name));
}

std::vector<std::string> HookModes(const HookGroup& group) {
  std::vector<std::string> modes;
  for (const auto& v : group.variants) modes.push_back(v.mode);
  return modes;
}

Result<HookChoice> ChooseHook(const HookGroup& group, std::string_view forced,
                              const TryVariant& try_variant) {
  HookChoice choice{&group, nullptr, {}};
  if (forced == "off" && !group.required) return choice;
  bool known = forced == "auto";
  int common_err = -1;  // the errno every variant failed with, if they agree
  for (const HookVariant& v : group.variants) {
    if (forced != "auto" && v.mode != forced) continue;
    known = true;
    auto ok = try_variant(v);
    if (ok) {
      choice.variant = &v;
      return choice;
    }
    choice.rejected.push_back(v.mode + ": " + ok.error().message);
    common_err = common_err == -1 || common_err == ok.error().err ? ok.error().err : 0;
  }
  if (!known) {
    std::string modes;
    for (const auto& m : HookModes(group)) modes += (modes.empty() ? "" : ", ") + m;
    return Fail(group.name + " hook '" + std::string(forced) + "' is not one of: auto, " + modes);
  }
  // On "auto" an optional group may end with nothing; a mode the config names must attach.
  if (!group.required && forced == "auto") return choice;
  std::string why;
  for (const auto& r : choice.rejected) why += (why.empty() ? "" : "; ") + r;
  return std::unexpected(Error{"no attachable hook for " + group.name + " (" + why + ")",
                               common_err > 0 ? common_err : 0});
}

Result<HookPlan> PlanHooks(const std::vector<HookGroup>& groups,
                           const std::map<std::string, std::string>& forced,
                           const TryVariant& try_variant) {
  HookPlan plan;
  for (const HookGroup& g : groups) {
    std::string mode = "auto";
    bool served = g.serves.empty();
    for (const auto& s : g.serves) served = served || plan.ModeOf(s) == g.serves_mode;
    if (!served) {
      plan.choices.push_back({&g, nullptr, {}});
      continue;
    }
    if (!g.follows.empty()) {
      mode = plan.ModeOf(g.follows);
      bool has = false;
      for (const auto& v : g.variants) has = has || v.mode == mode;
      if (!has) {  // the leader's mode covers this group's events itself
        plan.choices.push_back({&g, nullptr, {}});
        continue;
      }
    } else if (auto it = forced.find(g.config_key); it != forced.end()) {
      mode = it->second;
    }
    auto c = ChooseHook(g, mode, try_variant);
    // A follower's function may be absent (tcp_sendpage is gone in 6.5+, whose
    // tcp_sendmsg carries pages); one that exists but is refused is an error.
    if (!c && !g.follows.empty() && (c.error().err == ENOENT || c.error().err == ESRCH)) {
      plan.choices.push_back({&g, nullptr, {mode + ": " + c.error().message}});
      continue;
    }
    if (!c) return std::unexpected(c.error());
    plan.choices.push_back(std::move(*c));
  }
  return plan;
}

std::vector<std::string> HookPlan::Programs() const {
  std::vector<std::string> p;
  for (const auto& c : choices) {
    if (c.variant) p.insert(p.end(), c.variant->programs.begin(), c.variant->programs.end());
  }
  return p;
}

std::vector<std::string> HookPlan::Rejected() const {
  std::vector<std::string> r;
  for (const auto& c : choices) {
    for (const auto& why : c.rejected) r.push_back(c.group->name + ": " + why);
  }
  return r;
}

std::string HookPlan::ModeOf(std::string_view group) const {
  for (const auto& c : choices) {
    if (c.group->name == group) return c.variant ? c.variant->mode : "";
  }
  return "";
}

SectionParts SplitSection(std::string_view section) {
  auto slash = section.find('/');
  if (slash == std::string_view::npos) return {std::string(section), ""};
  std::string type(section.substr(0, slash));
  // libbpf accepts "tp/" as a short form of "tracepoint/".
  if (type == "tp") type = "tracepoint";
  return {type, std::string(section.substr(slash + 1))};
}

}  // namespace execflow
