#include "exporter/http/query.h"

#include <gtest/gtest.h>

namespace execflow {
namespace {

std::string Error(std::string_view q) {
  auto r = QueryUint(q, "limit", 1024);
  return r ? "accepted" : r.error().message;
}

TEST(QueryUint, FoundInAnyPosition) {
  EXPECT_EQ(*QueryUint("limit=3", "limit", 1024), 3u);
  EXPECT_EQ(*QueryUint("a=1&limit=3", "limit", 1024), 3u);
  EXPECT_EQ(*QueryUint("a=1&limit=3&b=2", "limit", 1024), 3u);
  EXPECT_EQ(*QueryUint("xlimit=9&limit=4", "limit", 1024), 4u);  // whole names only
  EXPECT_EQ(*QueryUint("limit=%31%32", "limit", 1024), 12u);      // percent-decoded
  EXPECT_EQ(*QueryUint("limit=0", "limit", 1024), 0u);
  EXPECT_EQ(*QueryUint("limit=1024", "limit", 1024), 1024u);
}

TEST(QueryUint, AbsentIsNotAnError) {
  EXPECT_EQ(*QueryUint("", "limit", 1024), std::nullopt);
  EXPECT_EQ(*QueryUint("a=1&b=limit", "limit", 1024), std::nullopt);
  EXPECT_EQ(*QueryUint("limit", "limit", 1024), std::nullopt);
}

TEST(QueryUint, Errors) {
  const std::string range = "limit must be an integer from 0 to 1024";
  EXPECT_EQ(Error("limit="), range);
  EXPECT_EQ(Error("limit=x"), range);
  EXPECT_EQ(Error("limit=-1"), range);
  EXPECT_EQ(Error("limit=1025"), range);
  EXPECT_EQ(Error("limit=3x"), range);
  EXPECT_EQ(Error("limit=%20"), range);
  EXPECT_EQ(Error("limit=99999999999999999999999"), range);
  EXPECT_EQ(Error("limit=" + std::string(40, '1')), range);
  EXPECT_EQ(Error("limit=1&limit=2"), "limit is given twice");
}

}  // namespace
}  // namespace execflow
