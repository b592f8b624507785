#pragma once

#include <bpf/libbpf.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "exporter/bpf/handles.h"
#include "exporter/common/result.h"

namespace execflow {

// State kept in bpffs so the programs go on counting while no exporter runs (crash,
// upgrade, rolling restart) and the next process carries on. Per collector:
//   <pin_path>/<collector>/maps/<map>    every map the programs write (.bss too)
//   <pin_path>/<collector>/links/<prog>  every attached program's link
//   <pin_path>/<collector>/stamp         what the state was built from; pinned last
// A process takes the state over (keeping the links: no gap, nothing counted twice)
// only if the stamp it would write is the one pinned (same BPF object, chosen
// programs, map sizes and settings); otherwise it is replaced, and the log says why.

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

// The layout of an opened, configured, unloaded object with the programs to
// attach. Maps fixed at load (.rodata, .kconfig) count in object_hash and are not pinned.
StateLayout LayoutOf(bpf_object* obj, const void* elf, size_t elf_size,
                     const std::vector<bpf_program*>& programs);
// Whether a map of the object is pinned (and taken over).
bool PinsMap(const bpf_map* map);

// Held while a process uses <pin_path>: an exclusive flock on the folder, so a
// second exporter (or --bpf.unpin) cannot take the state over meanwhile (err
// EWOULDBLOCK). Creates the folder (0700) if missing; its parent must be on bpffs.
class PinRoot {
 public:
  static Result<PinRoot> Open(const std::string& path);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  UniqueFd fd_;
};

// Whether `path`, or its parent if `path` does not exist, is on bpffs.
bool OnBpffs(const std::string& path);

// Removes `dir` and all in it (if there); returns the removed pins' paths relative to it.
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

// Before load: if `pins->stamp` is the one pinned in `pins->dir` and every map
// and link is there, makes the object reuse the pinned maps, loads none of
// `programs` (the pinned links keep theirs; a program the caller loads without a
// link, as the TCP collector's iterator, still loads, on the pinned maps) and
// sets pins->adopted. Otherwise removes what is pinned there, saying why in
// pins->note.
Result<void> AdoptOrClear(bpf_object* obj, const std::vector<bpf_program*>& programs,
                          CollectorPins* pins);
// After load, for a fresh state: pins the maps.
Result<void> PinMaps(bpf_object* obj, const std::string& dir);
// Pins a program's link; perf-event attachments fail (no BPF links before Linux 5.15).
Result<void> PinLink(bpf_link* link, const std::string& dir, const bpf_program* prog);
// A taken-over program's link and the fd of the program it runs.
Result<LinkPtr> OpenPinnedLink(const std::string& dir, const bpf_program* prog, UniqueFd* prog_fd);
// Pins the stamp: last, so a state without one is incomplete and replaced.
Result<void> WriteStamp(const std::string& dir, const std::string& stamp);
// The stamp pinned in `dir`, or "" if there is none.
std::string ReadStamp(const std::string& dir);

}  // namespace execflow
