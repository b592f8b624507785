#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <list>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "exporter/bpf/result.h"

namespace execflow {

struct BasicCredentials {
  std::string user;
  std::string password;
};

// The value of an Authorization header, "Basic <base64(user:password)>"
// (RFC 7617). Refuses other schemes, anything but canonical base64, a missing
// ':', control bytes (NUL included) in user or password, and values over 1 KiB.
Result<BasicCredentials> ParseBasicAuthorization(std::string_view header);

// A token bucket: `rate` tokens a second, at most `burst` saved up.
class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;
  TokenBucket(double rate, double burst);
  bool Take(Clock::time_point now = Clock::now());
  void Give(Clock::time_point now = Clock::now());

 private:
  void Refill(Clock::time_point now);
  const double rate_;
  const double burst_;
  std::mutex mu_;
  double tokens_;
  Clock::time_point last_;
};

enum class AuthResult { kAllowed, kMissing, kMalformed, kDenied, kThrottled };
const char* AuthResultName(AuthResult r);  // "missing", "malformed", "denied", "throttled"

// HTTP basic auth against bcrypt hashes (htpasswd -B), as exporter-toolkit
// does it, with three defences:
// - an unknown user costs one bcrypt against a dummy hash of the users' cost,
//   so a failure takes as long whether the user exists or not;
// - credentials that verified are remembered in a small LRU keyed by a
//   SHA-256 of user, hash and password (not the password itself); failures are
//   not remembered, so a flood of wrong passwords cannot evict a scraper's entry;
// - bcrypt runs one at a time, and each uncached check takes a token from a
//   bucket (given back when it succeeds): once a flood of wrong passwords has
//   spent the bucket, further uncached checks are refused at once (429)
//   instead of queueing for CPU, while cached scrapes go on as before.
class BasicAuth {
 public:
  struct Limits {
    size_t cache_entries = 64;
    double checks_per_second = 5;  // sustained rate of failing bcrypt checks
    double check_burst = 10;
  };
  explicit BasicAuth(std::map<std::string, std::string> users) : BasicAuth(std::move(users), Limits{}) {}
  BasicAuth(std::map<std::string, std::string> users, Limits limits);
  bool enabled() const { return !users_.empty(); }
  // `authorization` is the header's value, or null.
  AuthResult Check(const char* authorization);
  bool Allows(const char* authorization) { return Check(authorization) == AuthResult::kAllowed; }
  uint64_t bcrypt_runs() const { return bcrypt_runs_.load(); }
  const std::string& dummy_hash() const { return dummy_hash_; }

 private:
  using Key = std::array<unsigned char, 32>;
  struct KeyHash {
    size_t operator()(const Key& k) const;
  };
  bool Cached(const Key& k);
  void Remember(const Key& k);
  bool Verify(const std::string& password, const std::string& hash);

  const std::map<std::string, std::string> users_;
  const Limits limits_;
  std::string dummy_hash_;  // bcrypt of a random password at the users' cost
  TokenBucket bucket_;
  std::mutex bcrypt_mu_;
  std::atomic<uint64_t> bcrypt_runs_{0};
  std::mutex cache_mu_;
  std::list<Key> lru_;  // most recent first
  std::unordered_map<Key, std::list<Key>::iterator, KeyHash> cache_;
};

}  // namespace execflow
