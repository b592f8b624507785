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

#include "exporter/common/result.h"

namespace execflow {

struct BasicCredentials {
  std::string user;
  std::string password;
};

// An Authorization value, "Basic <base64(user:password)>" (RFC 7617). Refuses other
// schemes, non-canonical base64, no ':', control bytes (NUL too) in either, over 1 KiB.
Result<BasicCredentials> ParseBasicAuthorization(std::string_view header);

// A token bucket: `rate` tokens a second, at most `burst` saved up.
class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;
  TokenBucket(double rate, double burst);
  bool Take(Clock::time_point now = Clock::now());

 private:
  void Refill(Clock::time_point now);
  const double rate_;
  const double burst_;
  std::mutex mu_;
  double tokens_;
  Clock::time_point last_;
};

// Failed-login buckets, one per client address: `burst` failures, then `rate` a second.
// A full bucket is forgotten; with `max_addresses` buckets, a new address is refused.
class AddressBuckets {
 public:
  using Clock = std::chrono::steady_clock;
  AddressBuckets(double rate, double burst, size_t max_addresses);
  bool Take(std::string_view address, Clock::time_point now);
  void Give(std::string_view address, Clock::time_point now);
  size_t size();

 private:
  struct Bucket {
    double tokens;
    Clock::time_point last;
  };
  double Refilled(const Bucket& b, Clock::time_point now) const;
  const double rate_;
  const double burst_;
  const size_t max_addresses_;
  std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;
};

enum class AuthResult { kAllowed, kMissing, kMalformed, kDenied, kThrottled };
const char* AuthResultName(AuthResult r);  // "missing", "malformed", "denied", "throttled"

// HTTP basic auth against bcrypt hashes (htpasswd -B), as exporter-toolkit does it:
// - an unknown user costs one bcrypt against a dummy hash of the same cost, so the
//   time does not tell whether the user exists;
// - verified credentials are cached (LRU keyed by SHA-256 of user, hash, password) and
//   never throttled; failures are not, so wrong passwords cannot evict a scraper's entry;
// - bcrypt runs one at a time; each uncached check takes a token from the client
//   address's bucket (returned on success), and an address out of tokens gets 429 at
//   once instead of queueing for CPU. Per address: one shared bucket let one flood
//   throttle every new scraper.
class BasicAuth {
 public:
  using Clock = std::chrono::steady_clock;
  struct Limits {
    size_t cache_entries = 64;
    double checks_per_second = 5;  // sustained rate of failing bcrypt checks, per address
    double check_burst = 10;
    size_t max_addresses = 4096;  // addresses with failures remembered at once
  };
  explicit BasicAuth(std::map<std::string, std::string> users) : BasicAuth(std::move(users), Limits{}) {}
  BasicAuth(std::map<std::string, std::string> users, Limits limits);
  bool enabled() const { return !users_.empty(); }
  // `authorization`: header value or null; `now`: the time `client`'s bucket refills to.
  AuthResult Check(const char* authorization, std::string_view client = "",
                   Clock::time_point now = Clock::now());
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
  AddressBuckets failures_;
  std::mutex bcrypt_mu_;
  std::atomic<uint64_t> bcrypt_runs_{0};
  std::mutex cache_mu_;
  std::list<Key> lru_;  // most recent first
  std::unordered_map<Key, std::list<Key>::iterator, KeyHash> cache_;
};

}  // namespace execflow
