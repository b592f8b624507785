#include "exporter/http/auth.h"

#include <crypt.h>
#include <gtest/gtest.h>

namespace execflow {
namespace {

std::string Bcrypt(const char* password) {
  char salt[64];
  crypt_gensalt_rn("$2b$", 4, nullptr, 0, salt, sizeof(salt));  // cost 4: fast tests
  crypt_data d{};
  return crypt_r(password, salt, &d);
}

TEST(Base64, DecodesWithAndWithoutPadding) {
  std::string out;
  ASSERT_TRUE(DecodeBase64("dXNlcjpwYXNz", &out));
  EXPECT_EQ(out, "user:pass");
  ASSERT_TRUE(DecodeBase64("YTpi", &out));
  EXPECT_EQ(out, "a:b");
  ASSERT_TRUE(DecodeBase64("YTpiYw==", &out));
  EXPECT_EQ(out, "a:bc");
  ASSERT_TRUE(DecodeBase64("YTpiY2Q=", &out));
  EXPECT_EQ(out, "a:bcd");
  EXPECT_FALSE(DecodeBase64("YTp", &out));
  EXPECT_FALSE(DecodeBase64("YT!i", &out));
  EXPECT_FALSE(DecodeBase64("=Tpi", &out));
}

TEST(BasicAuth, DisabledAllowsEverything) {
  BasicAuth auth({});
  EXPECT_FALSE(auth.enabled());
  EXPECT_TRUE(auth.Allows(nullptr));
}

TEST(BasicAuth, ChecksUserAndPasswordAgainstBcrypt) {
  BasicAuth auth({{"prometheus", Bcrypt("s3cret")}});
  EXPECT_TRUE(auth.Allows("Basic cHJvbWV0aGV1czpzM2NyZXQ="));   // prometheus:s3cret
  EXPECT_TRUE(auth.Allows("Basic cHJvbWV0aGV1czpzM2NyZXQ="));   // remembered
  EXPECT_FALSE(auth.Allows("Basic cHJvbWV0aGV1czpzM2NyZXQx"));  // prometheus:s3cret1
  EXPECT_FALSE(auth.Allows("Basic bWFsbG9yeTpzM2NyZXQ="));      // mallory:s3cret
  EXPECT_FALSE(auth.Allows("Basic cHJvbWV0aGV1cw=="));          // no colon
  EXPECT_FALSE(auth.Allows("Bearer x"));
  EXPECT_FALSE(auth.Allows(nullptr));
}

}  // namespace
}  // namespace execflow
