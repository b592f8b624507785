#pragma once

#include <bpf/libbpf.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "exporter/bpf/handles.h"
#include "exporter/bpf/hooks.h"
#include "exporter/bpf/libbpf_log.h"
#include "exporter/bpf/result.h"

namespace execflow {

// A loaded skeleton and the links of the programs it attached.
template <typename Skel>
struct Attached {
  SkelPtr<Skel> skel;
  std::vector<LinkPtr> links;
  std::vector<bpf_program*> programs;  // in attach order, same as links
};

// Opens a fresh skeleton, lets `configure` set rodata and map sizes, loads
// only the named programs and attaches each. Everything is released on error.
template <typename Skel>
Result<Attached<Skel>> LoadAndAttach(
    const std::vector<std::string>& programs,
    const std::function<Result<void>(Skel*)>& configure) {
  Attached<Skel> a;
  a.skel.reset(Skel::open());
  if (!a.skel) return Fail("open bpf object", errno);
  if (auto ok = configure(a.skel.get()); !ok) return std::unexpected(ok.error());
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
  if (int err = Skel::load(a.skel.get()); err != 0) {
    return FailErrno("load " + names, err);
  }
  for (bpf_program* p : a.programs) {
    bpf_link* link = bpf_program__attach(p);
    if (!link) return Fail(std::string("attach ") + bpf_program__section_name(p), errno);
    a.links.emplace_back(link);
  }
  return a;
}

// A try function for ChooseHook: loads and attaches the variant alone in a
// fresh object, then releases it. libbpf's complaints about hooks this kernel
// lacks are logged at debug; ChooseHook reports why each variant failed.
template <typename Skel>
std::function<Result<void>(const HookVariant&)> Prober(
    const std::function<Result<void>(Skel*)>& configure) {
  return [configure](const HookVariant& v) -> Result<void> {
    QuietLibbpf quiet;
    auto probe = LoadAndAttach<Skel>(v.programs, configure);
    if (!probe) return std::unexpected(probe.error());
    return {};
  };
}

// Chooses a variant for every group (forced[i] is group i's mode or "auto"),
// then loads the chosen programs together.
template <typename Skel>
Result<Attached<Skel>> SelectAndAttach(
    const std::vector<HookGroup>& groups, const std::vector<std::string>& forced,
    const std::function<Result<void>(Skel*)>& configure,
    std::vector<HookChoice>* choices) {
  std::vector<std::string> chosen;
  choices->clear();
  const auto probe = Prober<Skel>(configure);
  for (size_t i = 0; i < groups.size(); ++i) {
    auto c = ChooseHook(groups[i], forced[i], probe);
    if (!c) return std::unexpected(c.error());
    if (c->variant) {
      chosen.insert(chosen.end(), c->variant->programs.begin(), c->variant->programs.end());
    }
    choices->push_back(std::move(*c));
  }
  return LoadAndAttach<Skel>(chosen, configure);
}

}  // namespace execflow
