// libFuzzer: the config and web config parsers (what --config.file and
// --web.config.file read) and ParseDuration. Beyond not crashing, an error is
// one bounded line without raw control bytes, whatever the input.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "exporter/config/config.h"
#include "exporter/config/web_config.h"
#include "exporter/config/yaml_section.h"

namespace {

void CheckError(const execflow::Error& e) {
  if (e.message.size() > 1024) std::abort();
  for (char c : e.message) {
    if (static_cast<unsigned char>(c) < 0x20) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > execflow::kMaxConfigBytes) return -1;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  if (auto c = execflow::ParseConfig(in, "fuzz.yaml"); !c) CheckError(c.error());
  if (auto w = execflow::ParseWebConfig(in, "/etc/execflow/web.yml"); !w) {
    CheckError(w.error());
  } else {
    for (const auto& [user, hash] : w->basic_auth_users) {
      if (user.empty() || user.find(':') != std::string::npos || hash.size() != 60) std::abort();
    }
  }
  if (auto d = execflow::ParseDuration(in.substr(0, 64)); d && (*d < 0 || *d != *d)) std::abort();
  return 0;
}
