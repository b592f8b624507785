#pragma once

#include <memory>
#include <string>
#include <vector>

#include <prometheus/metric_family.h>

#include "exporter/bpf/pinning.h"
#include "exporter/bpf/programs.h"
#include "exporter/common/result.h"
#include "exporter/state/state_file.h"

namespace execflow {

// One kernel-side collector: its BPF object, its attached programs and the
// metric families read from its maps on every scrape.
class Collector {
 public:
  virtual ~Collector() = default;
  virtual const std::string& Name() const = 0;
  // Runs on HTTP worker threads: never throws, returns what it could read
  // and counts what it could not in *errors.
  virtual std::vector<prometheus::MetricFamily> Collect(int* errors) = 0;
  // Programs attached and maps readable.
  virtual Result<void> Ready() const = 0;
  virtual const std::vector<ProgramInfo>& Programs() const = 0;
  // Whether its BPF state is pinned, and adopted from an earlier process.
  virtual const PinStatus& Pinned() const = 0;
  // Before the first scrape: seeds its series tables with what an earlier
  // process saved (null: nothing, its BPF state was not adopted), then
  // hands their state to `file` after every scrape that changed it.
  virtual void KeepState(std::shared_ptr<StateFile> file, const SavedTables* seed) = 0;
  // Starts reading its ring buffer (exec events, TCP close notices). After
  // KeepState: a pinned ring may hand a notice again that a killed process
  // was handling, and that take must be finished from its journal first, or
  // it would be counted twice.
  virtual Result<void> StartEvents() = 0;
};

}  // namespace execflow
