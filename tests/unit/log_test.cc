#include "exporter/log.h"

#include <gtest/gtest.h>

namespace execflow {
namespace {

TEST(Logfmt, PlainValuesStayBare) { EXPECT_EQ(LogfmtValue("ready"), "ready"); }

TEST(Logfmt, QuotesAndEscapesWhenNeeded) {
  EXPECT_EQ(LogfmtValue("attach failed: \"x\""), R"("attach failed: \"x\"")");
  EXPECT_EQ(LogfmtValue("a=b"), R"("a=b")");
  EXPECT_EQ(LogfmtValue("two\nlines"), R"("two\nlines")");
  EXPECT_EQ(LogfmtValue(""), R"("")");
}

TEST(Logging, RejectsUnknownLevelAndFormat) {
  auto a = SetupLogging("verbose", "logfmt");
  ASSERT_FALSE(a.has_value());
  EXPECT_EQ(a.error().message, "--log.level 'verbose': expected debug, info, warn or error");
  auto b = SetupLogging("info", "xml");
  ASSERT_FALSE(b.has_value());
  EXPECT_EQ(b.error().message, "--log.format 'xml': expected logfmt or json");
}

}  // namespace
}  // namespace execflow
