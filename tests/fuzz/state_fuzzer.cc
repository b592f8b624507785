// libFuzzer: the state file's decoder (what bpf.state_file holds across a restart).
// Beyond not crashing: what it accepts, written again by EncodeState, reads back as
// the same tables, so a state the exporter seeds itself with is one it can save.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "exporter/state/state_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto tables = execflow::DecodeState(text);
  if (!tables) return 0;
  auto again = execflow::DecodeState(execflow::EncodeState(*tables));
  if (!again || *again != *tables) std::abort();
  return 0;
}
