#pragma once

#include <bpf/libbpf.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "exporter/bpf/handles.h"
#include "exporter/common/result.h"

namespace execflow {

// State kept in bpffs so that the programs go on counting while no exporter
// runs (crash, upgrade, rolling restart) and the next process carries on
// from there. Layout, per collector:
//
//   <pin_path>/<collector>/maps/<map>    every map the programs write (.bss too)
//   <pin_path>/<collector>/links/<prog>  every attached program's link
//   <pin_path>/<collector>/stamp         what the state was built from; pinned last
//
// A process takes a collector's state over only if the stamp it would write is
// the one pinned (same BPF object, same chosen programs, same map sizes and
// settings): it keeps the pinned links, so the programs that counted while it
// was down go on counting, without a gap and without counting twice. Anything
// else is replaced, and the log says why.

// What a collector's pinned state is made of; its text form is the stamp.
struct MapLayout {
  std::string name;
  uint32_t type = 0, key_size = 0, value_size = 0, max_entries = 0, flags = 0;
};
struct StateLayout {
  uint64_t object_hash = 0;  // the BPF object's ELF bytes and its settings (.rodata)
  std::vector<std::string> programs;
  std::vector<MapLayout> maps;
};
// "execflow-pin/1 object=<16 hex> programs=a,b maps=name:type:key:value:entries:flags,...".
std::string LayoutStamp(const StateLayout& layout);

// 64-bit FNV-1a, continuing from `h`.
uint64_t Fnv1a(std::string_view bytes, uint64_t h = 0xcbf29ce484222325ULL);

// The layout of an opened, configured, not yet loaded object, with the
// programs that will be attached. Maps whose contents are fixed at load
// (.rodata, .kconfig) are part of object_hash, not of the pinned maps.
StateLayout LayoutOf(bpf_object* obj, const void* elf, size_t elf_size,
                     const std::vector<bpf_program*>& programs);
// Whether a map of the object is pinned (and taken over).
bool PinsMap(const bpf_map* map);

// Held for as long as a process uses <pin_path>: an exclusive flock on the
// folder, so a second exporter (or --bpf.unpin) cannot take the state over
// while one runs (that error's err is EWOULDBLOCK). Creates the folder (0700)
// if missing; its parent must be on a bpf filesystem.
class PinRoot {
 public:
  static Result<PinRoot> Open(const std::string& path);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  UniqueFd fd_;
};

// Whether `path`, or its parent folder if `path` does not exist, is on a bpf
// filesystem.
bool OnBpffs(const std::string& path);

// Removes everything under `dir` and `dir` itself; returns the pins removed
// (paths relative to `dir`). A missing `dir` removes nothing.
Result<std::vector<std::string>> RemovePinned(const std::string& dir);

// What became of a collector's pinned state at start-up.
struct PinStatus {
  bool pinned = false;   // its maps and links are pinned (they outlive the process)
  bool adopted = false;  // they were pinned by an earlier process and taken over
  std::string dir;
  std::string replaced;  // why an earlier state was replaced ("is from another layout (...)")
  std::string error;     // why nothing is pinned
};

// One collector's pinned state, around the loader's load and attach.
struct CollectorPins {
  std::string dir;  // <pin_path>/<collector>
  std::string stamp;
  bool adopted = false;
  std::string note;  // why the state was replaced, or not pinned; empty when taken over or fresh
};

// Before load: if `pins->stamp` is the stamp pinned in `pins->dir` and every
// map and link is there, makes the object reuse the pinned maps, turns off
// loading of every program (the pinned links keep theirs) and sets
// pins->adopted. Otherwise removes what is pinned there, saying why in
// pins->note.
Result<void> AdoptOrClear(bpf_object* obj, const std::vector<bpf_program*>& programs,
                          CollectorPins* pins);
// After load, for a fresh state: pins the maps.
Result<void> PinMaps(bpf_object* obj, const std::string& dir);
// Pins one attached program's link (fails for perf-event attachments that
// are not BPF links, before Linux 5.15).
Result<void> PinLink(bpf_link* link, const std::string& dir, const bpf_program* prog);
// A taken-over program's link and the fd of the program it runs.
Result<LinkPtr> OpenPinnedLink(const std::string& dir, const bpf_program* prog, UniqueFd* prog_fd);
// Pins the stamp: last, so a state without one is incomplete and replaced.
Result<void> WriteStamp(const std::string& dir, const std::string& stamp);
// The stamp pinned in `dir`, or "" if there is none.
std::string ReadStamp(const std::string& dir);

}  // namespace execflow
