#include "exporter/bpf/map_reader.h"

#include <bpf/bpf.h>

#include <map>

#include <gtest/gtest.h>

#include "exporter/bpf/handles.h"
#include "tests/integration/privileged.h"

namespace execflow {
namespace {

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
  BpfMapReader reader(fd.get(), "test_map", sizeof(uint32_t), sizeof(uint64_t), kCapacity);
  if (!GetParam()) reader.DisableBatch();
  auto entries = ReadEntries<uint32_t, uint64_t>(reader);
  ASSERT_TRUE(entries.has_value()) << entries.error().message;
  EXPECT_EQ(reader.UsedBatch(), GetParam());
  std::map<uint32_t, uint64_t> got;
  for (const auto& e : *entries) EXPECT_TRUE(got.emplace(e.key, e.value).second) << e.key;
  EXPECT_EQ(got, want);
}

TEST_P(MapReaderTest, EmptyMapReadsAsNothing) {
  EXECFLOW_REQUIRE_PRIVILEGED();
  UniqueFd fd(bpf_map_create(BPF_MAP_TYPE_HASH, "empty", 4, 8, 16, nullptr));
  ASSERT_TRUE(fd);
  BpfMapReader reader(fd.get(), "empty", 4, 8, 16);
  if (!GetParam()) reader.DisableBatch();
  auto entries = ReadEntries<uint32_t, uint64_t>(reader);
  ASSERT_TRUE(entries.has_value()) << entries.error().message;
  EXPECT_TRUE(entries->empty());
}

INSTANTIATE_TEST_SUITE_P(BatchAndIterate, MapReaderTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "batch" : "get_next_key"; });

}  // namespace
}  // namespace execflow
