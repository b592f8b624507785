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

// Reads a whole BPF map; an interface so Collect() can be unit-tested with a fake.
class MapReader {
 public:
  virtual ~MapReader() = default;
  virtual const std::string& Name() const = 0;
  virtual uint32_t Capacity() const = 0;
  virtual uint32_t KeySize() const = 0;
  virtual uint32_t ValueSize() const = 0;
  // Every entry, packed (entry i at i * KeySize() and i * ValueSize()); returns the count.
  virtual Result<size_t> ReadAll(std::vector<uint8_t>& keys,
                                 std::vector<uint8_t>& values) const = 0;
  // One entry's value. ENOENT when absent.
  virtual Result<void> Lookup(const void* key, void* value) const = 0;
  // Takes an entry out: its value, and the entry removed. ENOENT when absent.
  virtual Result<void> Take(const void* key, void* value) const = 0;
  // Whether Take() is atomic: nothing added to the entry meanwhile is lost.
  virtual bool AtomicTake() const { return true; }
};

// A kernel map read with BPF_MAP_LOOKUP_BATCH, or get_next_key + lookup where unsupported.
class BpfMapReader final : public MapReader {
 public:
  // Fails unless the map's key and value sizes are these (of the caller's C++ types).
  static Result<std::unique_ptr<BpfMapReader>> Open(KernelMap map, uint32_t key_size, uint32_t value_size);

  const std::string& Name() const override { return map_.name(); }
  uint32_t Capacity() const override { return map_.max_entries(); }
  uint32_t KeySize() const override { return map_.key_size(); }
  uint32_t ValueSize() const override { return map_.value_size(); }
  Result<size_t> ReadAll(std::vector<uint8_t>& keys,
                         std::vector<uint8_t>& values) const override;
  Result<void> Lookup(const void* key, void* value) const override;
  // Lookup-and-delete (hash maps: 5.14+), else lookup then delete.
  Result<void> Take(const void* key, void* value) const override;
  // Before 5.14 a hash map has no lookup-and-delete: a value added between the
  // lookup and the delete is lost, so callers take only entries nothing adds to.
  bool AtomicTake() const override { return lookup_and_delete_supported_; }

  const KernelMap& map() const { return map_; }
  // For tests and logs: whether the last ReadAll batched; forcing the fallbacks where the
  // kernel has batch lookup or lookup-and-delete.
  bool UsedBatch() const { return used_batch_; }
  void DisableBatch() { batch_supported_ = false; }
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

template <typename K, typename V>
Result<std::unique_ptr<BpfMapReader>> OpenMapReader(const bpf_map* map) {
  auto m = KernelMap::Of(map);
  if (!m) return std::unexpected(m.error());
  return BpfMapReader::Open(std::move(*m), sizeof(K), sizeof(V));
}

// A drop or overflow counter BPF programs add to atomically in the mmaped .bss.
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
