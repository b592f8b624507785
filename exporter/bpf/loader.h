#pragma once

#include <bpf/libbpf.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "exporter/bpf/handles.h"
#include "exporter/bpf/hooks.h"
#include "exporter/bpf/libbpf_log.h"
#include "exporter/bpf/programs.h"
#include "exporter/bpf/result.h"

namespace execflow {

// A loaded skeleton and the programs it attached.
template <typename Skel>
struct Attached {
  SkelPtr<Skel> skel;
  std::vector<LinkPtr> links;
  std::vector<bpf_program*> programs;  // in attach order, same as links
  HookPlan plan;
};

// Opens a fresh skeleton, marks only the named programs for loading, lets
// `configure` set rodata and map sizes (it may ask bpf_program__autoload()
// which programs will load), loads and attaches each. A refused load says
// why (the verifier's last lines, or libbpf's first complaint). Everything is released on error.
template <typename Skel>
Result<Attached<Skel>> LoadAndAttach(const std::vector<std::string>& programs,
                                     const std::function<Result<void>(Skel*)>& configure) {
  Attached<Skel> a;
  a.skel.reset(Skel::open());
  if (!a.skel) return Fail("open bpf object", errno);
  std::string names;
  bpf_program* prog;
  bpf_object__for_each_program(prog, a.skel->obj) {
    const std::string name = bpf_program__name(prog);
    bool wanted = std::find(programs.begin(), programs.end(), name) != programs.end();
    bpf_program__set_autoload(prog, wanted);
    if (wanted) {
      a.programs.push_back(prog);
      names += (names.empty() ? "" : ",") + name;
    }
  }
  if (a.programs.size() != programs.size()) return Fail("bpf object lacks a program of [" + names + "]");
  for (bpf_program* p : a.programs) {
    if (auto ok = CheckHookExists(p); !ok) return std::unexpected(ok.error());
  }
  if (auto ok = configure(a.skel.get()); !ok) return std::unexpected(ok.error());
  TakeLoadFailureReason();
  if (int err = Skel::load(a.skel.get()); err != 0) {
    auto fail = FailErrno("load " + names, err);
    // libbpf's reason, unless it only repeats the errno.
    const std::string why = TakeLoadFailureReason();
    if (!why.empty() && !why.ends_with(std::strerror(fail.error().err))) {
      fail.error().message += " (" + why + ")";
    }
    return fail;
  }
  for (bpf_program* p : a.programs) {
    bpf_link* link = bpf_program__attach(p);
    if (!link) return Fail(std::string("attach ") + bpf_program__section_name(p), errno);
    a.links.emplace_back(link);
  }
  return a;
}

// Chooses a variant for every group of `groups` by loading and attaching each
// candidate alone in a fresh object (then releasing it), then loads the
// chosen programs together. `forced` maps config keys to modes. libbpf's
// complaints about hooks this kernel lacks are logged at debug; the plan
// says why each variant was not used.
template <typename Skel>
Result<Attached<Skel>> SelectAndAttach(const std::vector<HookGroup>& groups,
                                       const std::map<std::string, std::string>& forced,
                                       const std::function<Result<void>(Skel*)>& configure) {
  auto plan = PlanHooks(groups, forced, [&](const HookVariant& v) -> Result<void> {
    QuietLibbpf quiet;
    auto probe = LoadAndAttach<Skel>(v.programs, configure);
    if (!probe) return std::unexpected(probe.error());
    return {};
  });
  if (!plan) return std::unexpected(plan.error());
  auto attached = LoadAndAttach<Skel>(plan->Programs(), configure);
  if (!attached) return std::unexpected(attached.error());
  attached->plan = std::move(*plan);
  return attached;
}

}  // namespace execflow
