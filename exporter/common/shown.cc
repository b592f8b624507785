#include "exporter/common/shown.h"

#include <cstring>

namespace execflow {

std::string Shown(std::string_view value) {
  constexpr size_t kMax = 64;
  static const char kHex[] = "0123456789abcdef";
  std::string out = "'";
  for (size_t i = 0; i < value.size() && i < kMax; ++i) {
    const unsigned char c = static_cast<unsigned char>(value[i]);
    if (c < 0x20 || c == 0x7f || c == '\\' || c == '\'') {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (value.size() > kMax) out += "...' (" + std::to_string(value.size()) + " bytes)";
  else out += "'";
  return out;
}

std::string ShownPath(const std::string& path) { return path.size() <= 256 ? path : Shown(path); }

std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name ? name : std::to_string(err);
}

}  // namespace execflow
