#include "exporter/http/auth.h"
#include "exporter/config/config.h"
#include "exporter/config/web_config.h"
#include "exporter/config/yaml_section.h"

#include <crypt.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>

namespace execflow {
namespace {

std::string Bcrypt(const char* password, int cost = 4) {  // cost 4: fast tests
  char salt[64];
  crypt_gensalt_rn("$2b$", cost, nullptr, 0, salt, sizeof(salt));
  crypt_data d{};
  return crypt_r(password, salt, &d);
}

std::string Header(const std::string& user_pass) {
  std::string out(4 * ((user_pass.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(user_pass.data()),
                                static_cast<int>(user_pass.size()));
  out.resize(n);
  return "Basic " + out;
}

TEST(ParseBasicAuthorization, DecodesUserAndPassword) {
  auto c = ParseBasicAuthorization("Basic dXNlcjpwYXNz");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->user, "user");
  EXPECT_EQ(c->password, "pass");
  // Scheme names are case-insensitive (RFC 9110); padding of both lengths.
  EXPECT_EQ(ParseBasicAuthorization("basic YTpiYw==")->password, "bc");
  EXPECT_EQ(ParseBasicAuthorization("BASIC YTpiY2Q=")->password, "bcd");
  // A password may hold ':'; the user may not (RFC 7617).
  auto colon = ParseBasicAuthorization(Header("u:p:q"));
  ASSERT_TRUE(colon.has_value());
  EXPECT_EQ(colon->user, "u");
  EXPECT_EQ(colon->password, "p:q");
  EXPECT_EQ(ParseBasicAuthorization(Header(":"))->user, "");
}

TEST(ParseBasicAuthorization, RefusesWhatIsNotCanonical) {
  auto err = [](std::string_view h) {
    auto c = ParseBasicAuthorization(h);
    return c ? std::string("accepted") : c.error().message;
  };
  EXPECT_EQ(err("Bearer x"), "not basic authorization");
  EXPECT_EQ(err("Basicx dXNlcjpwYXNz"), "not basic authorization");
  EXPECT_EQ(err("Basic "), "malformed base64 in authorization header");
  EXPECT_EQ(err("Basic YTp"), "malformed base64 in authorization header");
  EXPECT_EQ(err("Basic YT!i"), "malformed base64 in authorization header");
  EXPECT_EQ(err("Basic =Tpi"), "malformed base64 in authorization header");
  EXPECT_EQ(err("Basic YTpi YTpi"), "malformed base64 in authorization header");
  EXPECT_EQ(err("Basic YTpiYw==YTpi"), "malformed base64 in authorization header");
  EXPECT_EQ(err("Basic cHJvbWV0aGV1cw=="), "no ':' between user and password");
  EXPECT_EQ(err("Basic " + std::string(1100, 'A')), "authorization header longer than 1 KiB");
}

TEST(ParseBasicAuthorization, RefusesNulAndControlBytes) {
  const std::string nul("prometheus:s3cret\0junk", 22);
  EXPECT_EQ(ParseBasicAuthorization(Header(nul)).error().message,
            "control characters in user or password");
  EXPECT_EQ(ParseBasicAuthorization(Header("prome\ttheus:s3cret")).error().message,
            "control characters in user or password");
  EXPECT_EQ(ParseBasicAuthorization(Header("prometheus:s3cret\x7f")).error().message,
            "control characters in user or password");
  EXPECT_EQ(ParseBasicAuthorization(Header("prometheus:s3cret\r\n")).error().message,
            "control characters in user or password");
}

TEST(TokenBucket, RefillsAtItsRateUpToTheBurst) {
  using namespace std::chrono_literals;
  TokenBucket b(2, 3);  // 2 a second, 3 saved
  const auto t0 = TokenBucket::Clock::now();
  EXPECT_TRUE(b.Take(t0));
  EXPECT_TRUE(b.Take(t0));
  EXPECT_TRUE(b.Take(t0));
  EXPECT_FALSE(b.Take(t0));
  EXPECT_FALSE(b.Take(t0 + 400ms));  // 0.8 token
  EXPECT_TRUE(b.Take(t0 + 500ms));   // 1.0
  EXPECT_FALSE(b.Take(t0 + 500ms));
  EXPECT_TRUE(b.Take(t0 + 10s));  // capped at 3, not 19
  EXPECT_TRUE(b.Take(t0 + 10s));
  EXPECT_TRUE(b.Take(t0 + 10s));
  EXPECT_FALSE(b.Take(t0 + 10s));
}

// A hash's cost is the log2 of its rounds, and every check (and the dummy
// hash made at start-up and at each reload of the web config) pays it: 31 is
// a valid bcrypt cost that would hang both.
TEST(BasicAuth, ABcryptCostAboveHtpasswdsMaximumIsAConfigError) {
  const std::string salt_and_hash(53, 'a');
  auto config = [&](const std::string& cost) {
    return ParseWebConfig("basic_auth_users:\n  alice: $2y$" + cost + "$" + salt_and_hash + "\n",
                          "/etc/execflow/web.yml");
  };
  for (const char* cost : {"31", "18"}) {
    auto w = config(cost);
    ASSERT_FALSE(w.has_value()) << cost;
    EXPECT_EQ(w.error().message,
              std::string("/etc/execflow/web.yml:2: basic_auth_users: user 'alice': bcrypt cost ") + cost +
                  " is above 17, the most htpasswd makes (each check would take 2^" + cost +
                  " rounds); hash the password again with htpasswd -nBC 10 alice");
  }
  for (const char* cost : {"04", "10", "17"}) {
    auto w = config(cost);
    ASSERT_TRUE(w.has_value()) << cost << ": " << w.error().message;
    EXPECT_EQ(w->basic_auth_users.at("alice"), "$2y$" + std::string(cost) + "$" + salt_and_hash);
  }
}

TEST(BasicAuth, DisabledAllowsEverything) {
  BasicAuth auth({});
  EXPECT_FALSE(auth.enabled());
  EXPECT_TRUE(auth.Allows(nullptr));
}

TEST(BasicAuth, ChecksUserAndPasswordAgainstBcrypt) {
  BasicAuth auth({{"prometheus", Bcrypt("s3cret")}});
  EXPECT_EQ(auth.Check("Basic cHJvbWV0aGV1czpzM2NyZXQ="), AuthResult::kAllowed);  // prometheus:s3cret
  EXPECT_EQ(auth.bcrypt_runs(), 1u);
  EXPECT_EQ(auth.Check("Basic cHJvbWV0aGV1czpzM2NyZXQ="), AuthResult::kAllowed);  // remembered
  EXPECT_EQ(auth.bcrypt_runs(), 1u);
  EXPECT_EQ(auth.Check("Basic cHJvbWV0aGV1czpzM2NyZXQx"), AuthResult::kDenied);  // prometheus:s3cret1
  EXPECT_EQ(auth.Check("Basic bWFsbG9yeTpzM2NyZXQ="), AuthResult::kDenied);      // mallory:s3cret
  EXPECT_EQ(auth.Check("Basic cHJvbWV0aGV1cw=="), AuthResult::kMalformed);       // no colon
  EXPECT_EQ(auth.Check("Bearer x"), AuthResult::kMalformed);
  EXPECT_EQ(auth.Check(nullptr), AuthResult::kMissing);
  EXPECT_EQ(auth.bcrypt_runs(), 3u);
}

TEST(BasicAuth, PasswordWithNulJunkIsRefusedAndNeverCached) {
  BasicAuth auth({{"prometheus", Bcrypt("s3cret")}});
  // crypt() would stop at the NUL and see "s3cret".
  const std::string junk = Header(std::string("prometheus:s3cret\0junk", 22));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(auth.Check(junk.c_str()), AuthResult::kMalformed);
  EXPECT_EQ(auth.bcrypt_runs(), 0u);
}

TEST(BasicAuth, UnknownUsersCostOneBcryptAtTheUsersCost) {
  BasicAuth auth({{"prometheus", Bcrypt("s3cret", 6)}, {"grafana", Bcrypt("x", 5)}});
  ASSERT_EQ(auth.dummy_hash().size(), 60u);
  EXPECT_EQ(auth.dummy_hash().substr(0, 7), "$2b$06$");  // the highest cost configured
  EXPECT_EQ(auth.Check(Header("mallory:s3cret").c_str()), AuthResult::kDenied);
  EXPECT_EQ(auth.bcrypt_runs(), 1u);
  EXPECT_EQ(auth.Check(Header("prometheus:wrong").c_str()), AuthResult::kDenied);
  EXPECT_EQ(auth.bcrypt_runs(), 2u);
  // Failures are not remembered: each costs its bcrypt again.
  EXPECT_EQ(auth.Check(Header("mallory:s3cret").c_str()), AuthResult::kDenied);
  EXPECT_EQ(auth.Check(Header("prometheus:wrong").c_str()), AuthResult::kDenied);
  EXPECT_EQ(auth.bcrypt_runs(), 4u);
}

TEST(BasicAuth, TheCacheIsBoundedLeastRecentlyUsedFirst) {
  BasicAuth::Limits limits;
  limits.cache_entries = 2;
  BasicAuth auth({{"a", Bcrypt("pa")}, {"b", Bcrypt("pb")}, {"c", Bcrypt("pc")}}, limits);
  EXPECT_TRUE(auth.Allows(Header("a:pa").c_str()));
  EXPECT_TRUE(auth.Allows(Header("b:pb").c_str()));
  EXPECT_TRUE(auth.Allows(Header("a:pa").c_str()));  // a is now the most recent
  EXPECT_EQ(auth.bcrypt_runs(), 2u);
  EXPECT_TRUE(auth.Allows(Header("c:pc").c_str()));  // evicts b
  EXPECT_EQ(auth.bcrypt_runs(), 3u);
  EXPECT_TRUE(auth.Allows(Header("a:pa").c_str()));
  EXPECT_TRUE(auth.Allows(Header("c:pc").c_str()));
  EXPECT_EQ(auth.bcrypt_runs(), 3u);
  EXPECT_TRUE(auth.Allows(Header("b:pb").c_str()));
  EXPECT_EQ(auth.bcrypt_runs(), 4u);
}

// Time is given, never waited for: 5 tokens a second, 10 saved, per address.
TEST(BasicAuth, FailedChecksAreThrottledByAddressAndRememberedScrapesNever) {
  using namespace std::chrono_literals;
  BasicAuth auth({{"prometheus", Bcrypt("s3cret")}, {"grafana", Bcrypt("other")}});
  const auto t0 = BasicAuth::Clock::now();
  const std::string good = Header("prometheus:s3cret");
  const char* flooder = "10.0.0.1";
  EXPECT_EQ(auth.Check(good.c_str(), flooder, t0), AuthResult::kAllowed);  // its token is given back
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(auth.Check(Header("prometheus:guess" + std::to_string(i)).c_str(), flooder, t0),
              AuthResult::kDenied);
  }
  EXPECT_EQ(auth.bcrypt_runs(), 11u);
  // The address has spent its tokens: no more bcrypt for it, known user or not.
  EXPECT_EQ(auth.Check(Header("prometheus:guess").c_str(), flooder, t0), AuthResult::kThrottled);
  EXPECT_EQ(auth.Check(Header("mallory:guess").c_str(), flooder, t0), AuthResult::kThrottled);
  // New credentials from there wait too, even right ones: they are not known yet.
  EXPECT_EQ(auth.Check(Header("grafana:other").c_str(), flooder, t0), AuthResult::kThrottled);
  EXPECT_EQ(auth.bcrypt_runs(), 11u);
  // Remembered credentials pass from the flooding address, without bcrypt.
  for (int i = 0; i < 5; ++i) EXPECT_EQ(auth.Check(good.c_str(), flooder, t0), AuthResult::kAllowed);
  EXPECT_EQ(auth.bcrypt_runs(), 11u);
  // Another address is checked: a new scraper logs in, a wrong password is denied.
  EXPECT_EQ(auth.Check(Header("grafana:other").c_str(), "10.0.0.2", t0), AuthResult::kAllowed);
  EXPECT_EQ(auth.Check(Header("grafana:wrong").c_str(), "10.0.0.3", t0), AuthResult::kDenied);
  EXPECT_EQ(auth.bcrypt_runs(), 13u);
  // 5 a second come back to the flooding address.
  EXPECT_EQ(auth.Check(Header("prometheus:guess").c_str(), flooder, t0 + 199ms), AuthResult::kThrottled);
  EXPECT_EQ(auth.Check(Header("prometheus:guess").c_str(), flooder, t0 + 200ms), AuthResult::kDenied);
  EXPECT_EQ(auth.Check(Header("prometheus:guess").c_str(), flooder, t0 + 200ms), AuthResult::kThrottled);
  EXPECT_EQ(auth.bcrypt_runs(), 14u);
}

TEST(AddressBuckets, ForgetFullBucketsAndHoldAtMostTheirNumber) {
  using namespace std::chrono_literals;
  AddressBuckets b(1, 2, 2);  // 1 a second, 2 saved, 2 addresses
  const auto t0 = AddressBuckets::Clock::now();
  EXPECT_TRUE(b.Take("a", t0));
  EXPECT_TRUE(b.Take("b", t0));
  EXPECT_EQ(b.size(), 2u);
  // Two addresses are failing: a third is refused until one is full again.
  EXPECT_FALSE(b.Take("c", t0));
  EXPECT_FALSE(b.Take("c", t0 + 999ms));
  EXPECT_TRUE(b.Take("c", t0 + 1s));  // a and b are full again: forgotten
  EXPECT_EQ(b.size(), 1u);
  // A success gives the token back; a full bucket is forgotten.
  b.Give("c", t0 + 1s);
  EXPECT_EQ(b.size(), 0u);
  EXPECT_TRUE(b.Take("a", t0 + 1s));
  EXPECT_TRUE(b.Take("a", t0 + 1s));
  EXPECT_FALSE(b.Take("a", t0 + 1s));
  EXPECT_TRUE(b.Take("b", t0 + 1s));  // others are not affected
  b.Give("nobody", t0 + 1s);          // nothing to give back to
  EXPECT_EQ(b.size(), 2u);
}

}  // namespace
}  // namespace execflow
