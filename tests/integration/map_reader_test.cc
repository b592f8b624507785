#include "exporter/bpf/map_reader.h"

#include <bpf/bpf.h>

#include <map>
#include <vector>

#include <gtest/gtest.h>

#include "exporter/common/unique_fd.h"
#include "tests/integration/privileged.h"

namespace execflow {
namespace {

std::unique_ptr<BpfMapReader> OpenReader(int fd, uint32_t key_size, uint32_t value_size) {
  auto map = KernelMap::Of(fd, "test_map");
  EXPECT_TRUE(map.has_value()) << map.error().message;
  if (!map) return nullptr;
  auto reader = BpfMapReader::Open(std::move(*map), key_size, value_size);
  EXPECT_TRUE(reader.has_value()) << reader.error().message;
  return reader ? std::move(*reader) : nullptr;
}

class MapReaderTest : public ::testing::TestWithParam<bool> {};

TEST_P(MapReaderTest, ReadsEveryEntryExactlyOnce) {
  EXECFLOW_REQUIRE_PRIVILEGED();
  constexpr uint32_t kCapacity = 5000;
  UniqueFd fd(bpf_map_create(BPF_MAP_TYPE_HASH, "test_map", sizeof(uint32_t), sizeof(uint64_t),
                             kCapacity, nullptr));
  ASSERT_TRUE(fd) << std::strerror(errno);
  std::map<uint32_t, uint64_t> want;
  for (uint32_t k = 0; k < 4321; ++k) {
    uint64_t v = uint64_t{k} * 1000003;
    ASSERT_EQ(bpf_map_update_elem(fd.get(), &k, &v, BPF_NOEXIST), 0);
    want[k] = v;
  }
  auto reader = OpenReader(fd.get(), sizeof(uint32_t), sizeof(uint64_t));
  ASSERT_NE(reader, nullptr);
  EXPECT_EQ(reader->Capacity(), kCapacity);
  if (!GetParam()) reader->DisableBatch();
  auto entries = ReadEntries<uint32_t, uint64_t>(*reader);
  ASSERT_TRUE(entries.has_value()) << entries.error().message;
  EXPECT_EQ(reader->UsedBatch(), GetParam());
  std::map<uint32_t, uint64_t> got;
  for (const auto& e : *entries) EXPECT_TRUE(got.emplace(e.key, e.value).second) << e.key;
  EXPECT_EQ(got, want);
}

TEST_P(MapReaderTest, EmptyMapReadsAsNothing) {
  EXECFLOW_REQUIRE_PRIVILEGED();
  UniqueFd fd(bpf_map_create(BPF_MAP_TYPE_HASH, "empty", 4, 8, 16, nullptr));
  ASSERT_TRUE(fd);
  auto reader = OpenReader(fd.get(), 4, 8);
  ASSERT_NE(reader, nullptr);
  if (!GetParam()) reader->DisableBatch();
  auto entries = ReadEntries<uint32_t, uint64_t>(*reader);
  ASSERT_TRUE(entries.has_value()) << entries.error().message;
  EXPECT_TRUE(entries->empty());
}

// The kernel writes a whole key into the buffer it is handed: a buffer of
// another size than the map's key must be refused before the syscall, never
// overrun (Ready() once handed a 4-byte key to a map of 16-byte keys).
TEST(KernelMap, RefusesBuffersOfAnotherSizeThanTheMaps) {
  EXECFLOW_REQUIRE_PRIVILEGED();
  struct Key16 {
    uint64_t a, b;
  };
  UniqueFd fd(bpf_map_create(BPF_MAP_TYPE_HASH, "sized", sizeof(Key16), sizeof(uint64_t), 4, nullptr));
  ASSERT_TRUE(fd) << std::strerror(errno);
  auto map = KernelMap::Of(fd.get(), "sized");
  ASSERT_TRUE(map.has_value()) << map.error().message;
  const Key16 k{1, 2};
  const uint64_t v = 7;
  ASSERT_TRUE(map->Update(&k, sizeof(k), &v, sizeof(v), BPF_ANY));

  // A 4-byte key variable with guards around it: nothing may be written past it.
  struct {
    uint32_t key = 0xAAAAAAAA;
    uint32_t guard[3] = {0x5A5A5A5A, 0x5A5A5A5A, 0x5A5A5A5A};
  } small;
  auto first = map->FirstKey(&small.key);
  ASSERT_FALSE(first.has_value());
  EXPECT_EQ(first.error().err, EINVAL);
  EXPECT_NE(first.error().message.find("map sized"), std::string::npos) << first.error().message;
  EXPECT_EQ(small.key, 0xAAAAAAAAu);
  EXPECT_EQ(small.guard[0], 0x5A5A5A5Au);
  uint32_t short_value = 0;
  EXPECT_EQ(map->Lookup(k, &short_value).error().err, EINVAL);
  EXPECT_EQ(map->Delete(&k, 4).error().err, EINVAL);
  EXPECT_EQ(BpfMapReader::Open(*map, sizeof(uint32_t), sizeof(uint64_t)).error().err, EINVAL);

  Key16 got{};
  ASSERT_EQ(map->FirstKey(&got), true);
  EXPECT_EQ(got.a, 1u);
  uint64_t value = 0;
  ASSERT_TRUE(map->Lookup(k, &value));
  EXPECT_EQ(value, 7u);
}

// Per-CPU maps answer one 8-byte-aligned value per possible CPU.
TEST(KernelMap, PerCpuLookupsNeedRoomForEveryCpu) {
  EXECFLOW_REQUIRE_PRIVILEGED();
  UniqueFd fd(bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, "percpu", 4, sizeof(uint64_t), 1, nullptr));
  ASSERT_TRUE(fd) << std::strerror(errno);
  auto map = KernelMap::Of(fd.get(), "percpu");
  ASSERT_TRUE(map.has_value());
  EXPECT_EQ(map->lookup_size(), sizeof(uint64_t) * libbpf_num_possible_cpus());
  const uint32_t zero = 0;
  uint64_t one = 0;
  if (libbpf_num_possible_cpus() > 1) {
    EXPECT_EQ(map->Lookup(zero, &one).error().err, EINVAL);
  }
  std::vector<uint64_t> all(libbpf_num_possible_cpus());
  EXPECT_TRUE(map->Lookup(&zero, sizeof(zero), all.data(), all.size() * sizeof(uint64_t)));
}

TEST(KernelMap, LookupAndDeleteIsAskedOfAScratchMapAndOnlyNotSupportedMeansNone) {
  EXECFLOW_REQUIRE_PRIVILEGED();
  UniqueFd fd(bpf_map_create(BPF_MAP_TYPE_HASH, "probe_me", 4, 8, 4, nullptr));
  ASSERT_TRUE(fd);
  auto map = KernelMap::Of(fd.get(), "probe_me");
  ASSERT_TRUE(map.has_value());
  const uint32_t zero = 0;  // an entry the probe must not take
  const uint64_t v = 9;
  ASSERT_TRUE(map->Update(&zero, 4, &v, 8, BPF_ANY));
  auto works = map->LookupAndDeleteWorks();
  ASSERT_TRUE(works.has_value()) << works.error().message;
  EXPECT_TRUE(*works) << "hash maps have lookup-and-delete since 5.14; this kernel is newer";
  uint64_t still = 0;
  EXPECT_TRUE(map->Lookup(zero, &still));
  EXPECT_EQ(still, 9u);
  EXPECT_TRUE(LookupAndDeleteUnsupported(524));
  EXPECT_TRUE(LookupAndDeleteUnsupported(EOPNOTSUPP));
  EXPECT_FALSE(LookupAndDeleteUnsupported(ENOENT));
  EXPECT_FALSE(LookupAndDeleteUnsupported(EPERM));
  EXPECT_FALSE(LookupAndDeleteUnsupported(EFAULT));
  EXPECT_FALSE(LookupAndDeleteUnsupported(ENOMEM));
}

INSTANTIATE_TEST_SUITE_P(BatchAndIterate, MapReaderTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "batch" : "get_next_key"; });

}  // namespace
}  // namespace execflow
