#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "exporter/metrics/series_table.h"

namespace execflow {

// A key and its value as a kernel map holds them, for the tests of the tables.
template <typename Key>
struct Live {
  Key key;
  uint64_t value;
};

// One SeriesTable::Scrape() of these entries, packed as MapReader::ReadAll packs them.
template <typename Key>
void ScrapeLive(SeriesTable<Key>& table, const std::vector<Live<Key>>& live, uint64_t overflow) {
  std::vector<uint8_t> keys(live.size() * sizeof(Key)), values(live.size() * sizeof(uint64_t));
  for (size_t i = 0; i < live.size(); ++i) {
    std::memcpy(keys.data() + i * sizeof(Key), &live[i].key, sizeof(Key));
    std::memcpy(values.data() + i * sizeof(uint64_t), &live[i].value, sizeof(uint64_t));
  }
  table.Scrape(keys.data(), values.data(), sizeof(uint64_t), live.size(), overflow);
}

}  // namespace execflow
