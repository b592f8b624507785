#pragma once

#include <cstdint>
#include <string>

#include "exporter/common/result.h"

namespace execflow {

// A capability set as the kernel's 64-bit mask (bit N = capability N).
using CapSet = uint64_t;
inline constexpr CapSet CapBit(int cap) { return CapSet{1} << cap; }

struct Capabilities {
  CapSet effective = 0;
  CapSet permitted = 0;
};
Capabilities CurrentCapabilities();  // the calling thread's (capget)

// "cap_bpf,cap_perfmon" (libcap's names, lowest first); "" for none.
std::string CapabilityNames(CapSet set);

// Whether the BPF reads serving needs (lookup, get_next_key, batch lookup, lookup-and-
// delete; program info for run-time stats) work by fd with only `keep`: a thread drops to
// `keep` and tries them on a probe map and `prog_fd`. Linux 6.5+ checks no capability for
// them; older kernels with kernel.unprivileged_bpf_disabled refuse bpf() without CAP_BPF.
// Decided by trying, never by version.
Result<bool> BpfReadsWorkWith(CapSet keep, int prog_fd);

// Sets every thread to effective = permitted = `keep`, inheritable and ambient empty,
// no_new_privs and (when allowed) bounding set `keep`: nothing can be regained, not even
// by execve. Capabilities are per thread, so each gets a real-time signal whose handler
// makes the raw syscalls; /proc/self/task is read back to prove it. Not libpsx: Debian
// 12's (libcap 2.66) reaches only threads started via its pthread_create wrapper in our
// own objects, not std::thread's or a library's; libpsx 2.72+ (Debian 13) reaches all.
Result<void> RestrictCapabilities(CapSet keep);

}  // namespace execflow
