#include "exporter/http/auth.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstring>
#include <memory>

namespace execflow {
namespace {

constexpr size_t kMaxHeader = 1024;

bool IsControl(char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }

bool IsBase64(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

int Cost(const std::string& bcrypt_hash) {
  return (bcrypt_hash[4] - '0') * 10 + (bcrypt_hash[5] - '0');  // "$2y$10$...", checked at load
}

}  // namespace

Result<BasicCredentials> ParseBasicAuthorization(std::string_view h) {
  if (h.size() > kMaxHeader) return Fail("authorization header longer than 1 KiB");
  constexpr std::string_view kScheme = "basic";
  if (h.size() < kScheme.size() + 1 ||
      !std::equal(kScheme.begin(), kScheme.end(), h.begin(),
                  [](char a, char b) { return a == (b | 0x20); }) ||
      h[kScheme.size()] != ' ') {
    return Fail("not basic authorization");
  }
  std::string_view b64 = h.substr(kScheme.size());
  while (!b64.empty() && b64.front() == ' ') b64.remove_prefix(1);
  // Canonical base64 only: EVP_DecodeBlock skips whitespace and returns padding as zeros.
  size_t pad = 0;
  while (pad < 2 && pad < b64.size() && b64[b64.size() - 1 - pad] == '=') ++pad;
  if (b64.empty() || b64.size() % 4 != 0 ||
      !std::all_of(b64.begin(), b64.end() - pad, IsBase64)) {
    return Fail("malformed base64 in authorization header");
  }
  std::string decoded(b64.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(decoded.data()),
                                reinterpret_cast<const unsigned char*>(b64.data()),
                                static_cast<int>(b64.size()));
  if (n < 0 || static_cast<size_t>(n) < pad) return Fail("malformed base64 in authorization header");
  decoded.resize(static_cast<size_t>(n) - pad);
  const auto colon = decoded.find(':');
  if (colon == std::string::npos) return Fail("no ':' between user and password");
  if (std::any_of(decoded.begin(), decoded.end(), IsControl)) {
    return Fail("control characters in user or password");
  }
  return BasicCredentials{decoded.substr(0, colon), decoded.substr(colon + 1)};
}

TokenBucket::TokenBucket(double rate, double burst)
    : rate_(rate), burst_(burst), tokens_(burst), last_(Clock::now()) {}

void TokenBucket::Refill(Clock::time_point now) {
  if (now > last_) {
    const std::chrono::duration<double> dt = now - last_;
    tokens_ = std::min(burst_, tokens_ + dt.count() * rate_);
    last_ = now;
  }
}

bool TokenBucket::Take(Clock::time_point now) {
  std::lock_guard lock(mu_);
  Refill(now);
  if (tokens_ < 1) return false;
  tokens_ -= 1;
  return true;
}

AddressBuckets::AddressBuckets(double rate, double burst, size_t max_addresses)
    : rate_(rate), burst_(burst), max_addresses_(max_addresses) {}

double AddressBuckets::Refilled(const Bucket& b, Clock::time_point now) const {
  if (now <= b.last) return b.tokens;
  const std::chrono::duration<double> dt = now - b.last;
  return std::min(burst_, b.tokens + dt.count() * rate_);
}

bool AddressBuckets::Take(std::string_view address, Clock::time_point now) {
  std::lock_guard lock(mu_);
  auto it = buckets_.find(std::string(address));
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_addresses_) {
      std::erase_if(buckets_, [&](const auto& kv) { return Refilled(kv.second, now) >= burst_; });
      if (buckets_.size() >= max_addresses_) return false;
    }
    it = buckets_.emplace(std::string(address), Bucket{burst_, now}).first;
  }
  Bucket& b = it->second;
  b.tokens = Refilled(b, now);
  b.last = std::max(b.last, now);
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

void AddressBuckets::Give(std::string_view address, Clock::time_point now) {
  std::lock_guard lock(mu_);
  auto it = buckets_.find(std::string(address));
  if (it == buckets_.end()) return;
  Bucket& b = it->second;
  b.tokens = std::min(burst_, Refilled(b, now) + 1);
  b.last = std::max(b.last, now);
  if (b.tokens >= burst_) buckets_.erase(it);
}

size_t AddressBuckets::size() {
  std::lock_guard lock(mu_);
  return buckets_.size();
}

const char* AuthResultName(AuthResult r) {
  switch (r) {
    case AuthResult::kAllowed: return "allowed";
    case AuthResult::kMissing: return "missing";
    case AuthResult::kMalformed: return "malformed";
    case AuthResult::kDenied: return "denied";
    case AuthResult::kThrottled: return "throttled";
  }
  return "unknown";
}

size_t BasicAuth::KeyHash::operator()(const Key& k) const {
  size_t h;
  std::memcpy(&h, k.data(), sizeof(h));  // already a SHA-256
  return h;
}

BasicAuth::BasicAuth(std::map<std::string, std::string> users, Limits limits)
    : users_(std::move(users)),
      limits_(limits),
      failures_(limits.checks_per_second, limits.check_burst, limits.max_addresses) {
  if (users_.empty()) return;
  int cost = 4;
  for (const auto& [_, hash] : users_) cost = std::max(cost, Cost(hash));
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  unsigned char secret[16];
  char password[sizeof(secret) * 2 + 1];
  RAND_bytes(secret, sizeof(secret));
  for (size_t i = 0; i < sizeof(secret); ++i) std::snprintf(password + 2 * i, 3, "%02x", secret[i]);
  auto data = std::make_unique<crypt_data>();
  if (crypt_gensalt_rn("$2b$", cost, nullptr, 0, salt, sizeof(salt)) != nullptr) {
    if (const char* h = crypt_r(password, salt, data.get()); h && h[0] == '$') dummy_hash_ = h;
  }
}

bool BasicAuth::Cached(const Key& k) {
  std::lock_guard lock(cache_mu_);
  auto it = cache_.find(k);
  if (it == cache_.end()) return false;
  lru_.splice(lru_.begin(), lru_, it->second);
  return true;
}

void BasicAuth::Remember(const Key& k) {
  std::lock_guard lock(cache_mu_);
  if (cache_.count(k)) return;
  lru_.push_front(k);
  cache_[k] = lru_.begin();
  while (lru_.size() > limits_.cache_entries) {
    cache_.erase(lru_.back());
    lru_.pop_back();
  }
}

bool BasicAuth::Verify(const std::string& password, const std::string& hash) {
  auto data = std::make_unique<crypt_data>();  // 32 KiB: not on a worker's stack
  std::lock_guard lock(bcrypt_mu_);
  ++bcrypt_runs_;
  const char* got = crypt_r(password.c_str(), hash.c_str(), data.get());
  return got && std::strlen(got) == hash.size() && CRYPTO_memcmp(got, hash.data(), hash.size()) == 0;
}

AuthResult BasicAuth::Check(const char* authorization, std::string_view client, Clock::time_point now) {
  if (!enabled()) return AuthResult::kAllowed;
  if (!authorization) return AuthResult::kMissing;
  auto creds = ParseBasicAuthorization(authorization);
  if (!creds) return AuthResult::kMalformed;
  const auto it = users_.find(creds->user);
  const bool known = it != users_.end();
  const std::string& hash = known ? it->second : dummy_hash_;

  Key key;
  std::string material = creds->user + '\0' + hash + '\0' + creds->password;
  const int ok = EVP_Digest(material.data(), material.size(), key.data(), nullptr, EVP_sha256(), nullptr);
  OPENSSL_cleanse(material.data(), material.size());
  if (!ok) return AuthResult::kDenied;
  if (known && Cached(key)) return AuthResult::kAllowed;

  if (!failures_.Take(client, now)) return AuthResult::kThrottled;
  // Known or not, one bcrypt at the same cost: the time does not tell.
  const bool match = !hash.empty() && Verify(creds->password, hash);
  if (known && match) {
    failures_.Give(client, now);
    Remember(key);
    return AuthResult::kAllowed;
  }
  return AuthResult::kDenied;
}

}  // namespace execflow
