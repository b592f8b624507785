#pragma once

#include <bpf/libbpf.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "exporter/common/result.h"

namespace execflow {

// A BPF map's fd and sizes. The kernel writes a whole key or value into any buffer,
// unseen by sanitizers (a 4-byte variable for 16-byte keys is silently overrun), so
// each call takes its buffers' sizes and fails (EINVAL, before any syscall) unless they
// are the map's. The only user of libbpf's fd-level map calls (tests/lint checks it).
class KernelMap {
 public:
  // Does not own `fd`, which must outlive it. Reads the map's sizes from the kernel.
  static Result<KernelMap> Of(int fd, std::string name);
  // An object's map after load (its fd and the sizes libbpf loaded it with).
  static Result<KernelMap> Of(const bpf_map* map);

  const std::string& name() const { return name_; }
  int fd() const { return fd_; }
  uint32_t key_size() const { return key_size_; }
  uint32_t value_size() const { return value_size_; }
  uint32_t max_entries() const { return max_entries_; }
  // Bytes one lookup writes: value_size, or per-CPU maps an 8-byte-aligned one per possible CPU.
  size_t lookup_size() const { return lookup_size_; }

  Result<void> Lookup(const void* key, size_t key_bytes, void* value, size_t value_bytes) const;
  Result<void> Update(const void* key, size_t key_bytes, const void* value, size_t value_bytes,
                      uint64_t flags) const;
  Result<void> Delete(const void* key, size_t key_bytes) const;
  Result<void> LookupAndDelete(const void* key, size_t key_bytes, void* value, size_t value_bytes) const;
  // The key after `key` (null: the first); false at the end of the map.
  Result<bool> NextKey(const void* key, void* next, size_t key_bytes) const;
  // BPF_MAP_LOOKUP_BATCH into as many entries as both spans hold; `in`/`out` are
  // the cursors (null `in`: from the start). *copied is set on failure too:
  // ENOENT means the end of the map, ENOSPC that the next bucket needs more room.
  Result<void> LookupBatch(std::span<const uint8_t> in, std::span<uint8_t> out, std::span<uint8_t> keys,
                           std::span<uint8_t> values, uint32_t* copied) const;

  // Whether this kernel has lookup-and-delete for this map type (tried on a scratch map).
  Result<bool> LookupAndDeleteWorks() const;

  template <typename K, typename V>
  Result<void> Lookup(const K& key, V* value) const {
    return Lookup(&key, sizeof(K), value, sizeof(V));
  }
  template <typename K>
  Result<bool> FirstKey(K* key) const {
    return NextKey(nullptr, key, sizeof(K));
  }

 private:
  KernelMap(int fd, std::string name, uint32_t type, uint32_t key_size, uint32_t value_size, uint32_t max_entries);
  Result<void> Check(const char* what, size_t key_bytes, size_t value_bytes) const;

  int fd_ = -1;
  std::string name_;
  uint32_t type_ = 0;
  uint32_t key_size_ = 0;
  uint32_t value_size_ = 0;
  uint32_t max_entries_ = 0;
  size_t lookup_size_ = 0;
};

// Whether a failed lookup-and-delete means the kernel has none for this map type
// (hash maps before 5.14 give its internal ENOTSUPP, 524), not a failed call.
bool LookupAndDeleteUnsupported(int err);

}  // namespace execflow
