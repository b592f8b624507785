#include "exporter/events/event_log.h"

#include <cerrno>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

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
  r.args = {"true", "-v"};
  r.args_bytes = 8;
  r.seq = 9;
  EXPECT_EQ(ToJson(r),
            R"({"seq":9,"time":"2025-11-24T21:50:59.123456789Z","pid":42,"ppid":1,"uid":1000,)"
            R"("gid":100,"cgroup_id":7,"namespace":"shop","pod":"web-7d9f","container":"nginx",)"
            R"("comm":"true","filename":"/bin/true","args":["true","-v"],"args_bytes":8,"args_truncated":false,)"
            R"("errno":null})");
  // A failed attempt: its errno by name; arguments cut, their whole size unknown.
  r.error = ENOENT;
  r.args_bytes = std::nullopt;
  r.args_truncated = true;
  EXPECT_NE(ToJson(r).find(R"("args_bytes":null,"args_truncated":true,"errno":"ENOENT"})"), std::string::npos)
      << ToJson(r);
}

// The kernel's argument area: each argument and its NUL, cut anywhere by the bound.
TEST(Args, SplitAtEachNulKeepingEmptyArguments) {
  using namespace std::string_view_literals;
  ExecRecord r;
  SplitArgs("sh\0-c\0\0echo 'a b'\0"sv, 17, &r);
  EXPECT_EQ(r.args, (std::vector<std::string>{"sh", "-c", "", "echo 'a b'"}));
  EXPECT_EQ(r.args_bytes, 17u);
  EXPECT_FALSE(r.args_truncated);
  // Cut inside an argument: the part kept is the last argument, flagged.
  SplitArgs("sh\0-c\0ech"sv, 17, &r);
  EXPECT_EQ(r.args, (std::vector<std::string>{"sh", "-c", "ech"}));
  EXPECT_TRUE(r.args_truncated);
  // Cut right after a NUL: no empty argument is made up.
  SplitArgs("sh\0"sv, 17, &r);
  EXPECT_EQ(r.args, std::vector<std::string>{"sh"});
  EXPECT_TRUE(r.args_truncated);
  // A failed attempt's, cut: more than what is kept, how much more unknown.
  SplitArgs("sh\0-c\0"sv, std::nullopt, &r);
  EXPECT_EQ(r.args, (std::vector<std::string>{"sh", "-c"}));
  EXPECT_FALSE(r.args_bytes.has_value());
  EXPECT_TRUE(r.args_truncated);
  // Unreadable or none.
  SplitArgs(""sv, 17, &r);
  EXPECT_TRUE(r.args.empty());
  EXPECT_TRUE(r.args_truncated);
  SplitArgs(""sv, 0, &r);
  EXPECT_TRUE(r.args.empty());
  EXPECT_FALSE(r.args_truncated);
}

TEST(Args, InvalidUtf8AndControlBytesStayInsideTheirJsonString) {
  ExecRecord r;
  r.args = {"a\xff\x01\"", "\n"};
  const std::string json = ToJson(r);
  // U+FFFD for the invalid byte (as UTF-8), escapes for the control bytes and the quote.
  EXPECT_NE(json.find("\"args\":[\"a\xef\xbf\xbd\\u0001\\\"\",\"\\n\"]"), std::string::npos) << json;
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

// A reader that polls with after=N gets every event after N, or is told exactly
// how many it cannot have: evicted (keep_last) or dropped (the gaps in seq).
TEST(EventLog, AfterGivesWhatCameAfterAndCountsWhatIsLost) {
  EventLog log(4);
  auto push = [&](uint64_t seq) {
    ExecRecord r;
    r.seq = seq;
    r.pid = static_cast<uint32_t>(seq);
    log.Push(r);
  };
  auto after = [&](uint64_t n, size_t limit = 100) { return nlohmann::json::parse(log.JsonAfter(n, limit)); };
  auto seqs = [](const nlohmann::json& j) {
    std::vector<uint64_t> out;
    for (const auto& e : j["events"]) out.push_back(e["seq"]);
    return out;
  };
  auto j = after(0);
  EXPECT_EQ(seqs(j), std::vector<uint64_t>{});
  EXPECT_EQ(j["lost"], 0);
  EXPECT_EQ(j["next"], 0);
  for (uint64_t s : {1, 2, 3}) push(s);
  j = after(0);
  EXPECT_EQ(seqs(j), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(j["lost"], 0);
  EXPECT_EQ(j["next"], 3);
  // 4 and 5 dropped by the kernel: 6 comes with a gap.
  push(6);
  j = after(3);
  EXPECT_EQ(seqs(j), std::vector<uint64_t>{6});
  EXPECT_EQ(j["lost"], 2);
  EXPECT_EQ(j["dropped"], 2);
  EXPECT_EQ(j["evicted"], 0);
  EXPECT_EQ(j["next"], 6);
  EXPECT_EQ(after(6)["events"].size(), 0u);
  EXPECT_EQ(after(6)["next"], 6);
  // 7, 8, 9: 1, 2 and 3 are evicted (4 kept: 6 to 9).
  for (uint64_t s : {7, 8, 9}) push(s);
  j = after(0);
  EXPECT_EQ(seqs(j), (std::vector<uint64_t>{6, 7, 8, 9}));
  EXPECT_EQ(j["lost"], 5);
  EXPECT_EQ(j["evicted"], 3);  // 1, 2, 3: no longer kept
  EXPECT_EQ(j["dropped"], 2);  // 4, 5
  j = after(2);
  EXPECT_EQ(j["lost"], 3);
  EXPECT_EQ(j["evicted"], 1);
  EXPECT_EQ(j["dropped"], 2);
  // A limit pages forward from the oldest.
  j = after(6, 2);
  EXPECT_EQ(seqs(j), (std::vector<uint64_t>{7, 8}));
  EXPECT_EQ(j["next"], 8);
  EXPECT_EQ(j["lost"], 0);
  j = after(8, 0);
  EXPECT_EQ(seqs(j), std::vector<uint64_t>{});
  EXPECT_EQ(j["next"], 8);  // nothing read, nothing lost
  // An `after` past the newest: the exporter restarted; read from the start.
  j = after(1000);
  EXPECT_TRUE(j["reset"]);
  EXPECT_EQ(seqs(j), (std::vector<uint64_t>{6, 7, 8, 9}));
  EXPECT_FALSE(after(9)["reset"]);
}

TEST(EventLog, ZeroCapacityKeepsNothing) {
  EventLog log(0);
  log.Push(ExecRecord{});
  EXPECT_TRUE(log.Snapshot().empty());
}

}  // namespace
}  // namespace execflow
