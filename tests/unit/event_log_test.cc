#include "exporter/events/event_log.h"

#include <gtest/gtest.h>

namespace execflow {
namespace {

TEST(Json, EscapesQuotesBackslashesAndControls) {
  std::string out;
  AppendJsonString(out, "a\"b\\c\n\x01");
  EXPECT_EQ(out, R"("a\"b\\c\n\u0001")");
}

TEST(Json, KeepsValidUtf8AndReplacesInvalidBytes) {
  std::string out;
  AppendJsonString(out, "caf\xc3\xa9 \xff\xc3");
  EXPECT_EQ(out, "\"caf\xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd\"");  // U+FFFD, one per bad byte
}

TEST(Json, RejectsOverlongAndSurrogates) {
  std::string out;
  AppendJsonString(out, "\xc0\xaf\xed\xa0\x80");
  EXPECT_EQ(out, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
}

TEST(Json, RecordHasEveryField) {
  ExecRecord r;
  r.time_ns = 1764021059123456789LL;  // 2025-11-24T21:50:59.123456789Z
  r.pid = 42;
  r.ppid = 1;
  r.uid = 1000;
  r.gid = 100;
  r.cgroup_id = 7;
  r.k8s_namespace = "shop";
  r.pod = "web-7d9f";
  r.container = "nginx";
  r.comm = "true";
  r.filename = "/bin/true";
  EXPECT_EQ(ToJson(r),
            R"({"time":"2025-11-24T21:50:59.123456789Z","pid":42,"ppid":1,"uid":1000,)"
            R"("gid":100,"cgroup_id":7,"namespace":"shop","pod":"web-7d9f","container":"nginx",)"
            R"("comm":"true","filename":"/bin/true"})");
}

TEST(EventLog, KeepsTheLastN) {
  EventLog log(3);
  for (uint32_t i = 1; i <= 5; ++i) {
    ExecRecord r;
    r.pid = i;
    log.Push(r);
  }
  auto snap = log.Snapshot();
  ASSERT_EQ(snap.size(), 3u);
  EXPECT_EQ(snap[0].pid, 3u);
  EXPECT_EQ(snap[2].pid, 5u);
}

TEST(EventLog, JsonLimitTakesTheNewest) {
  EventLog log(10);
  for (uint32_t i = 1; i <= 4; ++i) {
    ExecRecord r;
    r.pid = i;
    log.Push(r);
  }
  const std::string json = log.Json(2);
  EXPECT_EQ(json.find("\"pid\":1,"), std::string::npos);
  EXPECT_EQ(json.find("\"pid\":2,"), std::string::npos);
  EXPECT_NE(json.find("\"pid\":3,"), std::string::npos);
  EXPECT_NE(json.find("\"pid\":4,"), std::string::npos);
  EXPECT_EQ(log.Json(0), "[]");
}

TEST(EventLog, ZeroCapacityKeepsNothing) {
  EventLog log(0);
  log.Push(ExecRecord{});
  EXPECT_TRUE(log.Snapshot().empty());
}

}  // namespace
}  // namespace execflow
