#pragma once

#include <map>
#include <mutex>
#include <set>
#include <string>
#include <string_view>

namespace execflow {

// "dXNlcjpwYXNz" -> "user:pass"; false on malformed input.
bool DecodeBase64(std::string_view in, std::string* out);

// HTTP basic auth against bcrypt hashes (htpasswd -B). bcrypt is slow on
// purpose (~50 ms at cost 10), so credentials that verified once are
// remembered, as Prometheus' exporter-toolkit does, and a scrape every 15 s
// costs one comparison.
class BasicAuth {
 public:
  explicit BasicAuth(std::map<std::string, std::string> users) : users_(std::move(users)) {}
  bool enabled() const { return !users_.empty(); }
  // The value of the Authorization header (may be null).
  bool Allows(const char* authorization) const;

 private:
  std::map<std::string, std::string> users_;
  mutable std::mutex mu_;
  mutable std::set<std::string> verified_;  // "user\0password"
};

}  // namespace execflow
