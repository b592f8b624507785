#include "exporter/bpf/map_reader.h"

#include <bpf/bpf.h>

#include <algorithm>
#include <set>

namespace execflow {

Result<void> BpfMapReader::Lookup(const void* key, void* value) const {
  if (bpf_map_lookup_elem(fd_, key, value) != 0) return Fail("look up in map " + name_, errno);
  return {};
}

Result<void> BpfMapReader::Take(const void* key, void* value) const {
  if (lookup_and_delete_supported_) {
    if (bpf_map_lookup_and_delete_elem(fd_, key, value) == 0) return {};
    // Hash maps before 5.14 answer the kernel's internal ENOTSUPP (524).
    if (errno == ENOENT) return Fail("take from map " + name_, errno);
    lookup_and_delete_supported_ = false;
  }
  if (bpf_map_lookup_elem(fd_, key, value) != 0) return Fail("take from map " + name_, errno);
  if (bpf_map_delete_elem(fd_, key) != 0) return Fail("take from map " + name_, errno);
  return {};
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
  // Buffers grow with what the map holds, not with its capacity: zero-filling
  // room for 131,072 flows on every scrape of a near-empty map cost more
  // than reading it.
  size_t room = std::min<size_t>(std::max<uint32_t>(capacity_, 1), 4096);
  keys.resize(room * key_size_);
  values.resize(room * value_size_);
  // Hash maps use a 4-byte bucket cursor, others a key: room for either.
  std::vector<uint8_t> in(std::max<uint32_t>(key_size_, 8));
  std::vector<uint8_t> out(in.size());
  LIBBPF_OPTS(bpf_map_batch_opts, opts);
  size_t total = 0;
  bool first = true;
  for (;;) {
    if (total == room) {
      room *= 2;
      keys.resize(room * key_size_);
      values.resize(room * value_size_);
    }
    __u32 count = static_cast<__u32>(room - total);
    int ret = bpf_map_lookup_batch(fd_, first ? nullptr : in.data(), out.data(),
                                   keys.data() + total * key_size_,
                                   values.data() + total * value_size_, &count, &opts);
    int err = ret < 0 ? errno : 0;
    if (err == ENOSPC && count == 0) {
      // The next hash bucket holds more entries than there is room for.
      room *= 2;
      keys.resize(room * key_size_);
      values.resize(room * value_size_);
      continue;
    }
    total += count;
    if (err == ENOENT) break;  // end of map
    if (err != 0 && err != ENOSPC) return Fail("batch lookup in map " + name_, err);
    in.swap(out);
    first = false;
  }
  keys.resize(total * key_size_);
  values.resize(total * value_size_);
  return total;
}

Result<size_t> BpfMapReader::ReadIterate(std::vector<uint8_t>& keys,
                                         std::vector<uint8_t>& values) const {
  keys.clear();
  values.clear();
  std::vector<uint8_t> key(key_size_), next(key_size_), value(value_size_);
  // get_next_key restarts from the first key when the current one was deleted
  // meanwhile; remembering what we saw keeps an entry from counting twice.
  std::set<std::string> seen;
  bool first = true;
  size_t n = 0;
  while (n < capacity_) {
    int ret = bpf_map_get_next_key(fd_, first ? nullptr : key.data(), next.data());
    if (ret < 0) {
      if (errno == ENOENT) break;
      return Fail("iterate map " + name_, errno);
    }
    first = false;
    key.swap(next);
    std::string k(reinterpret_cast<const char*>(key.data()), key_size_);
    if (seen.count(k)) continue;
    if (bpf_map_lookup_elem(fd_, key.data(), value.data()) < 0) {
      if (errno == ENOENT) continue;  // deleted between the two calls
      return Fail("lookup in map " + name_, errno);
    }
    seen.insert(std::move(k));
    keys.insert(keys.end(), key.begin(), key.end());
    values.insert(values.end(), value.begin(), value.end());
    ++n;
  }
  return n;
}

}  // namespace execflow
