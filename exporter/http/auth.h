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

 private:
  void Refill(Clock::time_point now);
  const double rate_;
  const double burst_;
  std::mutex mu_;
  double tokens_;
  Clock::time_point last_;
};

// Token buckets of failed logins, one per client address: an address may
// fail `burst` checks at once and `rate` a second after that. A full bucket
// is the same as none, so it is forgotten. At most `max_addresses` are held:
// when that many addresses are failing at once, a new address is refused
// (Take() is false) until one of them has waited long enough to be full again.
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

// HTTP basic auth against bcrypt hashes (htpasswd -B), as exporter-toolkit
// does it, with three defences:
// - an unknown user costs one bcrypt against a dummy hash of the users' cost,
//   so a failure takes as long whether the user exists or not;
// - credentials that verified are remembered in a small LRU keyed by a
//   SHA-256 of user, hash and password (not the password itself) and are
//   allowed from there, never throttled; failures are not remembered, so a
//   flood of wrong passwords cannot evict a scraper's entry;
// - bcrypt runs one at a time, and each uncached check takes a token from the
//   bucket of the client's address (given back when it succeeds): once an
//   address has spent its tokens on wrong passwords, its further uncached
//   checks are refused at once (429) instead of queueing for CPU. Other
//   addresses are not affected: a bucket shared by everyone let one flood
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
  // `authorization` is the header's value, or null; `client` the client's
  // address; `now` the time its bucket is refilled to.
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
