#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <prometheus/metric_family.h>

#include "exporter/bpf/event_consumer.h"
#include "exporter/bpf/handles.h"
#include "exporter/bpf/loader.h"
#include "exporter/bpf/map_reader.h"
#include "exporter/bpf/pinning.h"
#include "exporter/bpf/programs.h"
#include "exporter/common/result.h"
#include "exporter/common/unique_fd.h"
#include "exporter/state/keeper.h"
#include "exporter/state/state_file.h"

namespace execflow {

// The final value of a kernel map entry taken out of its map.
using FinalFn = std::function<void(const uint8_t* key, const uint8_t* value)>;
// How an entry is taken out of a map: MapReader::Take, journaled or not.
using TakeFn = std::function<Result<void>(const MapReader& map, const void* key, void* value)>;

// Reads `map` whole into keys/values (packed, see MapReader::ReadAll). Entries `done` picks
// (a closed flow, a gone cgroup's counts) are taken with `take` (null: MapReader::Take) and
// handed to `final`; the live rest are packed at the front, and their count returned.
Result<size_t> ReadLive(const MapReader& map, std::vector<uint8_t>& keys, std::vector<uint8_t>& values,
                        const std::function<bool(const uint8_t* key, const uint8_t* value)>& done,
                        const FinalFn& final, const TakeFn& take = nullptr);

// Every collector: one BPF object (a libbpf skeleton) loaded and attached, its pinned state, ring
// buffer, and the tables it keeps in bpf.state_file; a subclass adds its maps, what it does with
// each record, and its metric families. Life: Start (the subclass's), KeepState, StartEvents,
// then Collect on HTTP threads; the destructor stops the ring reader before what it uses goes.
class Collector {
 public:
  virtual ~Collector();
  Collector(const Collector&) = delete;
  Collector& operator=(const Collector&) = delete;

  const std::string& Name() const { return name_; }
  const std::vector<ProgramInfo>& Programs() const { return programs_; }
  // Whether its BPF state is pinned, and taken over from an earlier process.
  const PinStatus& Pinned() const { return pin_; }
  // Why each preferred hook was not used ("tp_btf: load ...: ..."), for the log.
  const std::vector<std::string>& rejected_hooks() const { return rejected_; }

  // On HTTP worker threads: never throws; returns what it read, counts failures in *errors.
  virtual std::vector<prometheus::MetricFamily> Collect(int* errors) = 0;
  // Programs attached and its main map readable.
  Result<void> Ready() const;
  // Before the first scrape: seeds the tables with what an earlier process saved (null: BPF state
  // not taken over) and replays its journal; later scrapes that change them save to `file`.
  void KeepState(std::shared_ptr<StateFile> file, const SavedTables* seed);
  // Starts reading the ring buffer. After KeepState: a pinned ring may hand again a record a
  // killed process was handling, whose take the journal must finish first, or it counts twice.
  void StartEvents();

 protected:
  explicit Collector(std::string name) : name_(std::move(name)) {}

  // Keeps what the loader attached; returns the skeleton, owned until the ring reader stops.
  template <typename Skel>
  Skel* Keep(Attached<Skel> a) {
    rejected_ = a.plan.Rejected();
    programs_ = a.Describe();
    links_ = std::move(a.links);
    prog_fds_ = std::move(a.prog_fds);
    pin_ = a.pin;
    Skel* skel = a.skel.release();
    object_ = std::shared_ptr<void>(skel, [](void* s) { Skel::destroy(static_cast<Skel*>(s)); });
    return skel;
  }
  // Opens the ring buffer (or perf buffer) StartEvents reads into OnRecord, at once: records
  // wait in it meanwhile (a perf buffer drops them while no reader is open).
  Result<void> ReadsEvents(const EventConsumer::Options& options);
  virtual void OnRecord(const void* /*data*/, size_t /*size*/) {}
  // The map Ready() reads.
  void ReadyWhenReadable(const KernelMap* map) { main_map_ = map; }
  // Stops the ring buffer reader and saves the tables. A subclass's destructor calls it first:
  // what the reader uses goes before this class does.
  void Stop();

  // Takes one entry out of `map` (journaled) into `final`; false if it was not there. Under mu_.
  bool TakeLocked(const MapReader& map, const void* key, const FinalFn& final);
  // How this collector takes map entries: journaled (see StateKeeper). Under mu_.
  TakeFn Taker() {
    return [this](const MapReader& map, const void* key, void* value) { return state_.Take(map, key, value); };
  }
  // execflow_bpf_program_info and the run-time stats of its programs.
  void AppendProgramFamilies(std::vector<prometheus::MetricFamily>* out) const;

  std::mutex mu_;      // guards the tables, the state and what the collector reads into
  StateKeeper state_;  // guarded by mu_

 private:
  std::string name_;
  std::shared_ptr<void> object_;  // the BPF object: destroyed after everything below
  std::vector<LinkPtr> links_;
  std::vector<ProgramInfo> programs_;
  std::vector<UniqueFd> prog_fds_;  // programs run by pinned links taken over
  PinStatus pin_;
  std::vector<std::string> rejected_;
  const KernelMap* main_map_ = nullptr;
  std::unique_ptr<EventConsumer> consumer_;
};

}  // namespace execflow
