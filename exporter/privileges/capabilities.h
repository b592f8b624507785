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

// Whether the BPF reads that serving needs (map lookup, get_next_key,
// batch lookup, lookup-and-delete; program info for run-time stats) work
// through file descriptors alone with `keep` as the only capabilities: a
// thread of its own drops to `keep` and tries them on a map created for the
// probe and on `prog_fd`. Linux 6.5+ checks no capability for them; older
// kernels with kernel.unprivileged_bpf_disabled refuse every bpf() command
// without CAP_BPF. Decided by trying, never by version.
Result<bool> BpfReadsWorkWith(CapSet keep, int prog_fd);

// Sets every thread of the process to effective = permitted = `keep`,
// inheritable and ambient empty, no_new_privs, and (when it may) a bounding
// set of `keep`: nothing can be regained, not even through execve. Each
// thread is reached with a real-time signal whose handler makes the raw
// syscalls for itself (capabilities are per thread); /proc/self/task is read
// back to prove it.
// Not libpsx (libcap's way to the same end): Debian 12's (libcap 2.66) reaches
// only threads started through its pthread_create wrapper in this binary's own
// objects, never those std::thread or a library starts, which would keep their
// capabilities. libpsx 2.72 and later (Debian 13) reach every thread.
Result<void> RestrictCapabilities(CapSet keep);

}  // namespace execflow
