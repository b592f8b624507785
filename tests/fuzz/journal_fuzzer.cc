// libFuzzer: one line of a take journal (what a killed exporter left in
// <state file>.<collector>.journal). Beyond not crashing: a record it accepts
// has a key of at least one byte, and one whose map name is a C identifier (as
// every map's is) is written again by EncodeTakeRecord as one line that reads
// back as the same record.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "exporter/state/journal.h"

namespace {

bool Identifier(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  auto r = execflow::DecodeTakeRecord(line);
  if (!r) return 0;
  if (r->key.empty()) std::abort();
  if (!Identifier(r->map)) return 0;
  const std::string encoded = execflow::EncodeTakeRecord(*r);
  if (encoded.find('\n') != encoded.size() - 1) std::abort();
  auto again = execflow::DecodeTakeRecord(std::string_view(encoded).substr(0, encoded.size() - 1));
  if (!again || *again != *r) std::abort();
  return 0;
}
