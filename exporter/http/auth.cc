#include "exporter/http/auth.h"

#include <crypt.h>

#include <cstring>

namespace execflow {

bool DecodeBase64(std::string_view in, std::string* out) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (in.size() % 4 != 0) return false;
  out->clear();
  for (size_t i = 0; i < in.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = in[i + k];
      if (c == '=' && i + 4 == in.size() && k >= 2) {
        v[k] = 0;
        ++pad;
      } else if (pad || (v[k] = value(c)) < 0) {
        return false;
      }
    }
    const uint32_t n = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
    out->push_back(static_cast<char>(n >> 16));
    if (pad < 2) out->push_back(static_cast<char>((n >> 8) & 0xFF));
    if (pad < 1) out->push_back(static_cast<char>(n & 0xFF));
  }
  return true;
}

bool BasicAuth::Allows(const char* authorization) const {
  if (!enabled()) return true;
  if (!authorization || std::strncmp(authorization, "Basic ", 6) != 0) return false;
  std::string decoded;
  if (!DecodeBase64(authorization + 6, &decoded)) return false;
  const auto colon = decoded.find(':');
  if (colon == std::string::npos) return false;
  const std::string user = decoded.substr(0, colon);
  const auto it = users_.find(user);
  if (it == users_.end()) return false;
  std::string key = decoded;
  key[colon] = '\0';
  {
    std::lock_guard lock(mu_);
    if (verified_.count(key)) return true;
  }
  crypt_data data{};
  const char* hash = crypt_r(decoded.c_str() + colon + 1, it->second.c_str(), &data);
  if (!hash || it->second.size() != std::strlen(hash)) return false;
  unsigned char diff = 0;  // constant time: no early exit on the first mismatch
  for (size_t i = 0; i < it->second.size(); ++i) diff |= hash[i] ^ it->second[i];
  if (diff != 0) return false;
  std::lock_guard lock(mu_);
  verified_.insert(std::move(key));
  return true;
}

}  // namespace execflow
