#include "exporter/bpf/kernel_map.h"

#include <bpf/bpf.h>

#include <unistd.h>

#include <algorithm>
#include <vector>

namespace execflow {
namespace {

bool IsPerCpu(uint32_t type) {
  return type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_ARRAY ||
         type == BPF_MAP_TYPE_LRU_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE;
}

// libbpf returns -errno and sets errno; both mean the same here.
// The error message is built only on failure: no allocation per map call.
Result<void> Done(int ret, const char* what, const std::string& name) {
  if (ret == 0) return {};
  const int err = ret < 0 ? -ret : errno;
  return Fail(std::string(what) + name, err);
}

}  // namespace

KernelMap::KernelMap(int fd, std::string name, uint32_t type, uint32_t key_size, uint32_t value_size,
                     uint32_t max_entries)
    : fd_(fd), name_(std::move(name)), type_(type), key_size_(key_size), value_size_(value_size),
      max_entries_(max_entries), lookup_size_(value_size) {
  if (IsPerCpu(type)) {
    const int cpus = libbpf_num_possible_cpus();
    lookup_size_ = ((size_t{value_size} + 7) / 8) * 8 * static_cast<size_t>(std::max(cpus, 1));
  }
}

Result<KernelMap> KernelMap::Of(int fd, std::string name) {
  bpf_map_info info = {};
  __u32 len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return Fail("read map " + name + "'s sizes", errno);
  return KernelMap(fd, std::move(name), info.type, info.key_size, info.value_size, info.max_entries);
}

Result<KernelMap> KernelMap::Of(const bpf_map* map) {
  const int fd = bpf_map__fd(map);
  if (fd < 0) return Fail(std::string("map ") + bpf_map__name(map) + " is not loaded");
  return Of(fd, bpf_map__name(map));
}

Result<void> KernelMap::Check(const char* what, size_t key_bytes, size_t value_bytes) const {
  if (key_bytes == key_size_ && value_bytes == lookup_size_) return {};
  return Fail(std::string(what) + " in map " + name_ + ": buffers of " + std::to_string(key_bytes) + " and " +
                  std::to_string(value_bytes) + " bytes for a key of " + std::to_string(key_size_) +
                  " and a value of " + std::to_string(lookup_size_),
              EINVAL);
}

Result<void> KernelMap::Lookup(const void* key, size_t key_bytes, void* value, size_t value_bytes) const {
  if (auto ok = Check("look up", key_bytes, value_bytes); !ok) return ok;
  return Done(bpf_map_lookup_elem(fd_, key, value), "look up in map ", name_);
}

Result<void> KernelMap::Update(const void* key, size_t key_bytes, const void* value, size_t value_bytes,
                               uint64_t flags) const {
  if (auto ok = Check("update", key_bytes, value_bytes); !ok) return ok;
  return Done(bpf_map_update_elem(fd_, key, value, flags), "update map ", name_);
}

Result<void> KernelMap::Delete(const void* key, size_t key_bytes) const {
  if (auto ok = Check("delete", key_bytes, lookup_size_); !ok) return ok;
  return Done(bpf_map_delete_elem(fd_, key), "delete from map ", name_);
}

Result<void> KernelMap::LookupAndDelete(const void* key, size_t key_bytes, void* value, size_t value_bytes) const {
  if (auto ok = Check("take", key_bytes, value_bytes); !ok) return ok;
  return Done(bpf_map_lookup_and_delete_elem(fd_, key, value), "take from map ", name_);
}

Result<bool> KernelMap::NextKey(const void* key, void* next, size_t key_bytes) const {
  if (auto ok = Check("iterate", key_bytes, lookup_size_); !ok) return std::unexpected(ok.error());
  if (bpf_map_get_next_key(fd_, key, next) == 0) return true;
  if (errno == ENOENT) return false;
  return Fail("iterate map " + name_, errno);
}

Result<void> KernelMap::LookupBatch(std::span<const uint8_t> in, std::span<uint8_t> out,
                                    std::span<uint8_t> keys, std::span<uint8_t> values, uint32_t* copied) const {
  *copied = 0;
  // Hash maps' cursors are a 4-byte bucket index, other maps' a key.
  const size_t cursor = std::max<size_t>(key_size_, 4);
  if ((!in.empty() && in.size() < cursor) || out.size() < cursor) {
    return Fail("batch lookup in map " + name_ + ": a cursor of " + std::to_string(out.size()) + " bytes", EINVAL);
  }
  const size_t room = std::min(keys.size() / key_size_, values.size() / lookup_size_);
  __u32 count = static_cast<__u32>(std::min<size_t>(room, UINT32_MAX));
  LIBBPF_OPTS(bpf_map_batch_opts, opts);
  const int ret = bpf_map_lookup_batch(fd_, in.empty() ? nullptr : const_cast<uint8_t*>(in.data()), out.data(),
                                       keys.data(), values.data(), &count, &opts);
  *copied = count;
  return Done(ret, "batch lookup in map ", name_);
}

Result<bool> KernelMap::LookupAndDeleteWorks() const {
  const int scratch = bpf_map_create(static_cast<bpf_map_type>(type_), "execflow_probe", key_size_, value_size_, 1,
                                     nullptr);
  if (scratch < 0) return Fail("create a map like " + name_ + " to probe lookup-and-delete", errno);
  auto probe = Of(scratch, "execflow_probe");
  Result<void> took = Fail("probe lookup-and-delete", EINVAL);
  if (probe) {
    std::vector<uint8_t> key(key_size_), value(lookup_size_);
    took = probe->LookupAndDelete(key.data(), key.size(), value.data(), value.size());
  }
  close(scratch);
  if (!probe) return std::unexpected(probe.error());
  if (took || took.error().err == ENOENT) return true;
  if (LookupAndDeleteUnsupported(took.error().err)) return false;
  return std::unexpected(took.error());
}

bool LookupAndDeleteUnsupported(int err) {
  constexpr int kKernelEnotsupp = 524;  // the kernel's internal ENOTSUPP, which leaks to user space
  return err == kKernelEnotsupp || err == EOPNOTSUPP || err == ENOTSUP || err == ENOSYS;
}

}  // namespace execflow
