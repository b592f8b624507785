#pragma once

#include <bpf/libbpf.h>

#include <memory>
#include <utility>

#include "exporter/common/unique_fd.h"

namespace execflow {

struct LinkDeleter {
  void operator()(bpf_link* l) const { bpf_link__destroy(l); }
};
using LinkPtr = std::unique_ptr<bpf_link, LinkDeleter>;

struct RingBufferDeleter {
  void operator()(ring_buffer* rb) const { ring_buffer__free(rb); }
};
using RingBufferPtr = std::unique_ptr<ring_buffer, RingBufferDeleter>;

struct PerfBufferDeleter {
  void operator()(perf_buffer* pb) const { perf_buffer__free(pb); }
};
using PerfBufferPtr = std::unique_ptr<perf_buffer, PerfBufferDeleter>;

// Owner of a bpftool-generated skeleton: Skel::destroy detaches and unloads.
template <typename Skel>
struct SkelDeleter {
  void operator()(Skel* s) const { Skel::destroy(s); }
};
template <typename Skel>
using SkelPtr = std::unique_ptr<Skel, SkelDeleter<Skel>>;

}  // namespace execflow
