#include "exporter/collectors/collector.h"

#include <cstring>

#include <spdlog/spdlog.h>

#include "exporter/metrics/families.h"

namespace execflow {

// Each collector's destructor has called Stop(): this is only for one that failed in Start().
Collector::~Collector() { consumer_.reset(); }

void Collector::Stop() {
  consumer_.reset();
  // What was taken out of the kernel maps since the last scrape.
  std::unique_lock lock(mu_);
  state_.Save(lock);
}

Result<void> Collector::Ready() const {
  if (links_.empty()) return Fail(name_ + ": no program attached");
  if (main_map_) {
    std::vector<uint8_t> key(main_map_->key_size());
    if (auto read = main_map_->NextKey(nullptr, key.data(), key.size()); !read) {
      return Fail(name_ + ": " + read.error().message);
    }
  }
  return {};
}

void Collector::KeepState(std::shared_ptr<StateFile> file, const SavedTables* seed) {
  std::unique_lock lock(mu_);
  state_.Start(std::move(file), seed, name_);
  state_.Save(lock);  // the seeded tables, at once: a crash during start-up keeps them
}

Result<void> Collector::ReadsEvents(const EventConsumer::Options& options) {
  auto consumer = EventConsumer::Open(options, [this](const void* data, size_t size) { OnRecord(data, size); });
  if (!consumer) return std::unexpected(consumer.error());
  consumer_ = std::move(*consumer);
  return {};
}

void Collector::StartEvents() {
  if (consumer_) consumer_->Run();
}

namespace {

// One entry out of `map`; false if it was not there (taken already).
bool TakeOne(const MapReader& map, const void* key, const FinalFn& final, const TakeFn& take) {
  std::vector<uint8_t> value(map.ValueSize());
  auto took = take ? take(map, key, value.data()) : map.Take(key, value.data());
  if (!took) return false;
  final(static_cast<const uint8_t*>(key), value.data());
  return true;
}

}  // namespace

Result<size_t> ReadLive(const MapReader& map, std::vector<uint8_t>& keys, std::vector<uint8_t>& values,
                        const std::function<bool(const uint8_t* key, const uint8_t* value)>& done,
                        const FinalFn& final, const TakeFn& take) {
  auto n = map.ReadAll(keys, values);
  if (!n) return n;
  const size_t key_size = map.KeySize(), value_size = map.ValueSize();
  size_t kept = 0;
  for (size_t i = 0; i < *n; ++i) {
    const uint8_t* key = keys.data() + i * key_size;
    const uint8_t* value = values.data() + i * value_size;
    if (done && done(key, value) && TakeOne(map, key, final, take)) continue;
    if (kept != i) {
      std::memmove(keys.data() + kept * key_size, key, key_size);
      std::memmove(values.data() + kept * value_size, value, value_size);
    }
    ++kept;
  }
  return kept;
}

bool Collector::TakeLocked(const MapReader& map, const void* key, const FinalFn& final) {
  return TakeOne(map, key, final, Taker());
}

void Collector::AppendProgramFamilies(std::vector<prometheus::MetricFamily>* out) const {
  auto info = Gauge("execflow_bpf_program_info", "Attached BPF programs and the hook each uses; 1 per program.");
  auto secs = Counter("execflow_bpf_program_run_seconds_total",
                      "Time the kernel spent running the program (bpf run-time stats).");
  auto runs = Counter("execflow_bpf_program_runs_total", "Times the kernel ran the program (bpf run-time stats).");
  // The kernel skips a program that would re-enter on its CPU (an fexit program preempted), and
  // a kprobe or classic tracepoint program while another such program or a BPF map syscall (of
  // any process, this one's too) is running on that CPU; the event is lost, so it must show.
  auto misses = Counter("execflow_bpf_program_misses_total",
                        "Runs the kernel skipped because the program, or for kprobe and tracepoint "
                        "programs another such program or a BPF map syscall, was already running on "
                        "that CPU; their events are not counted.");
  for (const auto& p : programs_) {
    AddGauge(info, {{"program", p.program}, {"hook", p.hook}, {"attach_type", p.attach_type}}, 1);
    auto stats = ReadRunStats(p.fd);
    if (!stats) continue;
    AddCounter(secs, {{"program", p.program}}, static_cast<double>(stats->run_time_ns) / 1e9);
    AddCounter(runs, {{"program", p.program}}, static_cast<double>(stats->run_cnt));
    AddCounter(misses, {{"program", p.program}}, static_cast<double>(stats->recursion_misses));
  }
  out->push_back(std::move(info));
  out->push_back(std::move(secs));
  out->push_back(std::move(runs));
  out->push_back(std::move(misses));
}

}  // namespace execflow
