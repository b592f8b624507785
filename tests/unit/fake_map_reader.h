#pragma once

#include <cstring>
#include <vector>

#include <prometheus/metric_family.h>

#include "exporter/bpf/map_reader.h"

namespace execflow {

// An in-memory map for Collect() tests.
template <typename K, typename V>
class FakeMapReader final : public MapReader {
 public:
  FakeMapReader(std::string name, uint32_t capacity) : name_(std::move(name)), capacity_(capacity) {}
  void Put(const K& k, const V& v) { entries_.push_back({k, v}); }
  void FailWith(int err) { fail_ = err; }

  const std::string& Name() const override { return name_; }
  uint32_t Capacity() const override { return capacity_; }
  uint32_t KeySize() const override { return sizeof(K); }
  uint32_t ValueSize() const override { return sizeof(V); }
  Result<size_t> ReadAll(std::vector<uint8_t>& keys, std::vector<uint8_t>& values) const override {
    if (fail_) return Fail("read map " + name_, fail_);
    keys.resize(entries_.size() * sizeof(K));
    values.resize(entries_.size() * sizeof(V));
    for (size_t i = 0; i < entries_.size(); ++i) {
      std::memcpy(keys.data() + i * sizeof(K), &entries_[i].key, sizeof(K));
      std::memcpy(values.data() + i * sizeof(V), &entries_[i].value, sizeof(V));
    }
    return entries_.size();
  }
  Result<void> Lookup(const void* key, void* value) const override {
    for (const auto& e : entries_) {
      if (std::memcmp(&e.key, key, sizeof(K)) != 0) continue;
      std::memcpy(value, &e.value, sizeof(V));
      return {};
    }
    return Fail("look up in map " + name_, ENOENT);
  }
  Result<void> Take(const void* key, void* value) const override {
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (std::memcmp(&it->key, key, sizeof(K)) != 0) continue;
      std::memcpy(value, &it->value, sizeof(V));
      entries_.erase(it);
      return {};
    }
    return Fail("take from map " + name_, ENOENT);
  }

 private:
  std::string name_;
  uint32_t capacity_;
  mutable std::vector<MapEntry<K, V>> entries_;
  int fail_ = 0;
};

// Finds the sample of `family` whose labels equal `labels`; null if none.
inline const prometheus::ClientMetric* FindSample(
    const std::vector<prometheus::MetricFamily>& families, const std::string& family,
    const std::vector<std::pair<std::string, std::string>>& labels) {
  for (const auto& f : families) {
    if (f.name != family) continue;
    for (const auto& m : f.metric) {
      if (m.label.size() != labels.size()) continue;
      bool eq = true;
      for (size_t i = 0; i < labels.size(); ++i) {
        eq = eq && m.label[i].name == labels[i].first && m.label[i].value == labels[i].second;
      }
      if (eq) return &m;
    }
  }
  return nullptr;
}

}  // namespace execflow
