#include "exporter/bpf/map_reader.h"

#include <bpf/bpf.h>

#include <algorithm>
#include <set>

namespace execflow {

Result<std::unique_ptr<BpfMapReader>> BpfMapReader::Open(KernelMap map, uint32_t key_size, uint32_t value_size) {
  if (map.key_size() != key_size || map.lookup_size() != value_size) {
    return Fail("map " + map.name() + " has keys of " + std::to_string(map.key_size()) + " bytes and values of " +
                    std::to_string(map.lookup_size()) + ", not " + std::to_string(key_size) + " and " +
                    std::to_string(value_size),
                EINVAL);
  }
  std::unique_ptr<BpfMapReader> r(new BpfMapReader(std::move(map)));
  // Asked once, of a scratch map of the same type: a key of this map may be all zeros.
  auto works = r->map_.LookupAndDeleteWorks();
  if (!works) return std::unexpected(works.error());
  r->lookup_and_delete_supported_ = *works;
  return r;
}

Result<void> BpfMapReader::Lookup(const void* key, void* value) const {
  return map_.Lookup(key, map_.key_size(), value, map_.lookup_size());
}

Result<void> BpfMapReader::Take(const void* key, void* value) const {
  if (lookup_and_delete_supported_) return map_.LookupAndDelete(key, map_.key_size(), value, map_.lookup_size());
  if (auto ok = map_.Lookup(key, map_.key_size(), value, map_.lookup_size()); !ok) return ok;
  return map_.Delete(key, map_.key_size());
}

Result<size_t> BpfMapReader::ReadAll(std::vector<uint8_t>& keys,
                                     std::vector<uint8_t>& values) const {
  if (batch_supported_) {
    auto n = ReadBatch(keys, values);
    if (n || (n.error().err != EINVAL && n.error().err != ENOTSUP &&
              n.error().err != EOPNOTSUPP && n.error().err != ENOSYS)) {
      used_batch_ = true;
      return n;
    }
    // Pre-5.6 kernels and some map types: remember and iterate instead.
    batch_supported_ = false;
  }
  used_batch_ = false;
  return ReadIterate(keys, values);
}

Result<size_t> BpfMapReader::ReadBatch(std::vector<uint8_t>& keys,
                                       std::vector<uint8_t>& values) const {
  const size_t key_size = map_.key_size(), value_size = map_.lookup_size();
  // Buffers grow with the map's contents, not its capacity: zero-filling room for
  // 131,072 flows per scrape of a near-empty map cost more than reading it.
  size_t room = std::min<size_t>(std::max<uint32_t>(map_.max_entries(), 1), 4096);
  keys.resize(room * key_size);
  values.resize(room * value_size);
  // Hash maps use a 4-byte bucket cursor, others a key: room for either.
  std::vector<uint8_t> in(std::max<size_t>(key_size, 8));
  std::vector<uint8_t> out(in.size());
  size_t total = 0;
  bool first = true;
  for (;;) {
    if (total == room) {
      room *= 2;
      keys.resize(room * key_size);
      values.resize(room * value_size);
    }
    uint32_t count = 0;
    auto ok = map_.LookupBatch(first ? std::span<const uint8_t>() : std::span<const uint8_t>(in), out,
                               std::span(keys).subspan(total * key_size),
                               std::span(values).subspan(total * value_size), &count);
    const int err = ok ? 0 : ok.error().err;
    if (err == ENOSPC && count == 0) {
      // The next hash bucket holds more entries than there is room for.
      room *= 2;
      keys.resize(room * key_size);
      values.resize(room * value_size);
      continue;
    }
    total += count;
    if (err == ENOENT) break;  // end of map
    if (err != 0 && err != ENOSPC) return std::unexpected(ok.error());
    in.swap(out);
    first = false;
  }
  keys.resize(total * key_size);
  values.resize(total * value_size);
  return total;
}

Result<size_t> BpfMapReader::ReadIterate(std::vector<uint8_t>& keys,
                                         std::vector<uint8_t>& values) const {
  const size_t key_size = map_.key_size(), value_size = map_.lookup_size();
  keys.clear();
  values.clear();
  std::vector<uint8_t> key(key_size), next(key_size), value(value_size);
  // get_next_key restarts from the first key when the current one was deleted
  // meanwhile; remembering what we saw keeps an entry from counting twice.
  std::set<std::string> seen;
  bool first = true;
  size_t n = 0;
  while (n < map_.max_entries()) {
    auto more = map_.NextKey(first ? nullptr : key.data(), next.data(), key_size);
    if (!more) return std::unexpected(more.error());
    if (!*more) break;
    first = false;
    key.swap(next);
    std::string k(reinterpret_cast<const char*>(key.data()), key_size);
    if (seen.count(k)) continue;
    if (auto found = map_.Lookup(key.data(), key_size, value.data(), value_size); !found) {
      if (found.error().err == ENOENT) continue;  // deleted between the two calls
      return std::unexpected(found.error());
    }
    seen.insert(std::move(k));
    keys.insert(keys.end(), key.begin(), key.end());
    values.insert(values.end(), value.begin(), value.end());
    ++n;
  }
  return n;
}

}  // namespace execflow
