#pragma once

#include <linux/types.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "exporter/bpf/kernel_map.h"
#include "exporter/common/result.h"

namespace execflow {

// Reads a whole BPF map. Collectors take this interface so Collect() can be
// unit-tested with a fake instead of a kernel map.
class MapReader {
 public:
  virtual ~MapReader() = default;
  virtual const std::string& Name() const = 0;
  virtual uint32_t Capacity() const = 0;
  virtual uint32_t KeySize() const = 0;
  virtual uint32_t ValueSize() const = 0;
  // Replaces keys/values with every entry, packed: entry i's key is at
  // i * KeySize(), its value at i * ValueSize(). Returns the entry count.
  virtual Result<size_t> ReadAll(std::vector<uint8_t>& keys,
                                 std::vector<uint8_t>& values) const = 0;
  // One entry's value. ENOENT when absent.
  virtual Result<void> Lookup(const void* key, void* value) const = 0;
  // Takes an entry out: its value, and the entry removed. ENOENT when absent.
  virtual Result<void> Take(const void* key, void* value) const = 0;
  // Whether Take() is atomic: nothing added to the entry meanwhile is lost.
  virtual bool AtomicTake() const { return true; }
};

// A kernel map read with BPF_MAP_LOOKUP_BATCH, falling back to
// get_next_key + lookup on kernels or map types without batch support.
class BpfMapReader final : public MapReader {
 public:
  // Fails unless the map's key and value sizes are these (the C++ types the
  // caller will read them into).
  static Result<std::unique_ptr<BpfMapReader>> Open(KernelMap map, uint32_t key_size, uint32_t value_size);

  const std::string& Name() const override { return map_.name(); }
  uint32_t Capacity() const override { return map_.max_entries(); }
  uint32_t KeySize() const override { return map_.key_size(); }
  uint32_t ValueSize() const override { return map_.value_size(); }
  Result<size_t> ReadAll(std::vector<uint8_t>& keys,
                         std::vector<uint8_t>& values) const override;
  Result<void> Lookup(const void* key, void* value) const override;
  // Lookup-and-delete (5.14+ for hash maps), else lookup then delete (see
  // AtomicTake()).
  Result<void> Take(const void* key, void* value) const override;
  // Whether Take() is one kernel operation. Before 5.14 a hash map has no
  // lookup-and-delete: a value added between the lookup and the delete is
  // lost, so callers take only entries nothing adds to any more.
  bool AtomicTake() const override { return lookup_and_delete_supported_; }

  const KernelMap& map() const { return map_; }
  // Whether the last ReadAll used the batch path (for tests and logs).
  bool UsedBatch() const { return used_batch_; }
  // Forces the get_next_key path, to test it on kernels with batch support.
  void DisableBatch() { batch_supported_ = false; }
  // Forces lookup then delete, to test that path on kernels with lookup-and-delete.
  void DisableLookupAndDelete() { lookup_and_delete_supported_ = false; }

 private:
  explicit BpfMapReader(KernelMap map) : map_(std::move(map)) {}
  Result<size_t> ReadBatch(std::vector<uint8_t>& keys,
                           std::vector<uint8_t>& values) const;
  Result<size_t> ReadIterate(std::vector<uint8_t>& keys,
                             std::vector<uint8_t>& values) const;

  KernelMap map_;
  mutable bool batch_supported_ = true;
  bool lookup_and_delete_supported_ = true;
  mutable bool used_batch_ = false;
};

// A reader of an object's loaded map whose entries are K and V.
template <typename K, typename V>
Result<std::unique_ptr<BpfMapReader>> OpenMapReader(const bpf_map* map) {
  auto m = KernelMap::Of(map);
  if (!m) return std::unexpected(m.error());
  return BpfMapReader::Open(std::move(*m), sizeof(K), sizeof(V));
}

// Reads a counter that BPF programs update with atomic adds in the object's
// mmaped .bss (drop and overflow counters).
inline uint64_t LoadCounter(const __u64& v) { return __atomic_load_n(&v, __ATOMIC_RELAXED); }

template <typename K, typename V>
struct MapEntry {
  K key;
  V value;
};

// Typed view of MapReader::ReadAll.
template <typename K, typename V>
Result<std::vector<MapEntry<K, V>>> ReadEntries(const MapReader& reader) {
  if (reader.KeySize() != sizeof(K) || reader.ValueSize() != sizeof(V)) {
    return Fail("read map " + reader.Name() + ": key/value size mismatch");
  }
  std::vector<uint8_t> keys, values;
  auto n = reader.ReadAll(keys, values);
  if (!n) return std::unexpected(n.error());
  std::vector<MapEntry<K, V>> out(*n);
  for (size_t i = 0; i < *n; ++i) {
    std::memcpy(&out[i].key, keys.data() + i * sizeof(K), sizeof(K));
    std::memcpy(&out[i].value, values.data() + i * sizeof(V), sizeof(V));
  }
  return out;
}

}  // namespace execflow
