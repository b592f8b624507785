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
#include "exporter/bpf/pinning.h"
#include "exporter/bpf/programs.h"
#include "exporter/common/result.h"

namespace execflow {

template <typename Skel>
struct Attached {
  SkelPtr<Skel> skel;
  std::vector<LinkPtr> links;
  std::vector<bpf_program*> programs;  // in attach order, same as links
  HookPlan plan;
  // Taken over from pins: links are the pinned ones, prog_fds their programs.
  PinStatus pin;
  std::vector<UniqueFd> prog_fds;

  // The programs as attached (a taken-over program's fd is the pinned link's).
  std::vector<ProgramInfo> Describe() const {
    std::vector<ProgramInfo> out;
    for (size_t i = 0; i < programs.size(); ++i) {
      out.push_back(DescribeProgram(programs[i]));
      if (i < prog_fds.size()) out.back().fd = prog_fds[i].get();
    }
    return out;
  }
};

// Pins a fresh state: maps, links, then the stamp. If a link cannot be pinned,
// what was pinned is removed and the collector stays unpinned.
template <typename Skel>
void PinFresh(Attached<Skel>* a, const CollectorPins& pins) {
  auto ok = PinMaps(a->skel->obj, pins.dir);
  for (size_t i = 0; ok && i < a->links.size(); ++i) ok = PinLink(a->links[i].get(), pins.dir, a->programs[i]);
  if (ok) ok = WriteStamp(pins.dir, pins.stamp);
  if (ok) {
    a->pin.pinned = true;
    return;
  }
  a->pin.error = ok.error().message;
  if (auto removed = RemovePinned(pins.dir); !removed) a->pin.error += "; " + removed.error().message;
}

// Loads and attaches only the named programs of a fresh skeleton, after `configure` set
// rodata and map sizes (bpf_program__autoload() tells which will load); releases all on
// error. A refused load says why (the verifier's last lines, or libbpf's first complaint).
// With `pin_dir`, takes over the state pinned there if built from the same object,
// programs and settings, else replaces it (pinning.h).
template <typename Skel>
Result<Attached<Skel>> LoadAndAttach(const std::vector<std::string>& programs,
                                     const std::function<Result<void>(Skel*)>& configure,
                                     const std::string& pin_dir = "") {
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
  CollectorPins pins;
  pins.dir = pin_dir;
  if (!pin_dir.empty()) {
    size_t elf_size = 0;
    const void* elf = Skel::elf_bytes(&elf_size);
    pins.stamp = LayoutStamp(LayoutOf(a.skel->obj, elf, elf_size, a.programs));
    if (auto ok = AdoptOrClear(a.skel->obj, a.programs, &pins); !ok) return std::unexpected(ok.error());
    a.pin.dir = pin_dir;
    a.pin.adopted = a.pin.pinned = pins.adopted;
    a.pin.replaced = pins.note;
  }
  TakeLoadFailureReason();
  if (int err = Skel::load(a.skel.get()); err != 0) {
    auto fail = FailErrno("load " + names, err);
    // libbpf's reason, unless it only repeats the errno.
    const std::string why = TakeLoadFailureReason();
    if (!why.empty() && !why.ends_with(ErrnoText(fail.error().err))) {
      fail.error().message += " (" + why + ")";
    }
    return fail;
  }
  if (a.pin.adopted) {
    for (bpf_program* p : a.programs) {
      UniqueFd fd;
      auto link = OpenPinnedLink(pin_dir, p, &fd);
      if (!link) return std::unexpected(link.error());
      a.links.push_back(std::move(*link));
      a.prog_fds.push_back(std::move(fd));
    }
    return a;
  }
  for (bpf_program* p : a.programs) {
    bpf_link* link = bpf_program__attach(p);
    if (!link) return Fail(std::string("attach ") + bpf_program__section_name(p), errno);
    a.links.emplace_back(link);
  }
  if (!pin_dir.empty()) PinFresh(&a, pins);
  return a;
}

// Picks a variant per group by trying each alone in a fresh object, then loads the
// chosen ones together; the plan says why each other variant was not used. `forced`:
// config key -> mode. Probes never touch `pin_dir`: they count into maps of their own
// while the pinned programs go on counting.
template <typename Skel>
Result<Attached<Skel>> SelectAndAttach(const std::vector<HookGroup>& groups,
                                       const std::map<std::string, std::string>& forced,
                                       const std::function<Result<void>(Skel*)>& configure,
                                       const std::string& pin_dir = "") {
  auto plan = PlanHooks(groups, forced, [&](const HookVariant& v) -> Result<void> {
    QuietLibbpf quiet;
    auto probe = LoadAndAttach<Skel>(v.programs, configure);
    if (!probe) return std::unexpected(probe.error());
    return {};
  });
  if (!plan) return std::unexpected(plan.error());
  auto attached = LoadAndAttach<Skel>(plan->Programs(), configure, pin_dir);
  if (!attached) return std::unexpected(attached.error());
  attached->plan = std::move(*plan);
  return attached;
}

}  // namespace execflow
