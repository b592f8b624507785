#include "exporter/state/state_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include "tests/unit/scratch_dir.h"

namespace execflow {
namespace {

class StateFileTest : public ::testing::Test {
 protected:
  void Write(const std::string& text) {
    ASSERT_TRUE(MakeStateDir(path_));
    std::ofstream(path_) << text;
  }
  ScratchDir scratch_{"execflow_state"};
  const std::string dir_ = scratch_.path(), path_ = dir_ + "/run/state.json";
};

SavedState Sample() {
  SeriesTableState tcp;
  tcp.other_labels = {"saddr", "daddr", "dport"};
  tcp.series.push_back({{{"saddr", "127.0.0.1"}, {"daddr", "127.0.0.1"}, {"dport", "8080"}}, 18446744073709551615ull,
                        false});
  tcp.series.push_back({{{"saddr", "::1"}, {"daddr", "\"quoted\"\n"}, {"dport", "443"}}, 0, true});
  tcp.keys = {{std::string("\x00\xff\x10", 3), 1, 100}, {std::string("\x01", 1), -1, 0},
              {std::string("\x02", 1), 0, 5, true, 9}};
  tcp.other = 17;
  tcp.taken = 18446744073709551615ull;
  SeriesTableState execs;
  execs.other_labels = {"uid"};
  return {{{"tcp_sent", tcp}, {"exec_execs", execs}},
          {{18446744073709551615ull, {"shop", "web-7d9f", "nginx"}}, {4242, {"", "", "0a1b2c3d4e5f"}}}};
}

TEST_F(StateFileTest, WhatIsWrittenIsReadBackExactly) {
  ASSERT_TRUE(MakeStateDir(path_));
  struct stat st;
  ASSERT_EQ(stat((dir_ + "/run").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  ASSERT_TRUE(WriteStateFile(path_, Sample()));
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_NE(access((path_ + ".tmp." + std::to_string(getpid())).c_str(), F_OK), 0)
      << "the temporary file was renamed";
  auto back = LoadStateFile(path_);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, Sample()) << "2^64-1 survives exactly; labels are escaped";
  // Rewritten in place of the old one.
  SavedState less = Sample();
  less.tables.erase("tcp_sent");
  ASSERT_TRUE(WriteStateFile(path_, less));
  EXPECT_EQ(*LoadStateFile(path_), less);
}

TEST_F(StateFileTest, AMissingFileIsAnEmptyState) {
  auto s = LoadStateFile(path_);
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(*s, SavedState{});
}

TEST_F(StateFileTest, ACorruptFileIsAnErrorNamingTheFile) {
  const std::string text = EncodeState(Sample());
  Write(text.substr(0, text.size() / 2));  // a torn write
  auto s = LoadStateFile(path_);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message, path_ + ": not valid JSON");
  Write("{\"format\": 1, \"tables\": {}}");
  EXPECT_EQ(LoadStateFile(path_).error().message, path_ + ": not format 2");
  Write("[]");
  EXPECT_EQ(LoadStateFile(path_).error().message, path_ + ": not format 2");
  Write("");
  EXPECT_EQ(LoadStateFile(path_).error().message, path_ + ": not valid JSON");
}

// What a hostile or damaged file may hold, each refused with what is wrong:
// counts that are negative, fractional, beyond 2^64-1 or absurd; label values
// that are huge; keys that are not hex or point at no series.
TEST_F(StateFileTest, ValuesNoTableCouldHoldAreRefused) {
  auto table = [](const std::string& other, const std::string& series, const std::string& keys = "[]") {
    return "{\"format\": 2, \"workloads\": {}, \"tables\": {\"tcp_sent\": {\"label_names\": [\"a\"], "
           "\"other\": " + other + ", \"taken\": 0, \"series\": " + series + ", \"keys\": " + keys + "}}}";
  };
  const std::string ok_series = "[{\"labels\": [\"x\"], \"retired\": 5, \"live\": true}]";
  ASSERT_TRUE(DecodeState(table("0", ok_series, "[[\"0a\", 0, 3]]")));
  const std::pair<std::string, std::string> cases[] = {
      {table("-1", ok_series), "table tcp_sent: other is not a count"},
      {table("1e300", ok_series), "table tcp_sent: other is not a count"},
      {table("18446744073709551617", ok_series), "table tcp_sent: other is not a count"},
      {table("2.5", ok_series), "table tcp_sent: other is not a count"},
      {table("0", "[{\"labels\": [\"x\"], \"retired\": -100, \"live\": true}]"),
       "table tcp_sent: a series' retired total is not a count"},
      {table("0", "[{\"labels\": [1], \"retired\": 5, \"live\": true}]"),
       "table tcp_sent: a label value is not a string"},
      {table("0", "[{\"labels\": [], \"retired\": 5, \"live\": true}]"),
       "table tcp_sent: a series without a value for each label"},
      {table("0", "[{\"labels\": [\"" + std::string(1025, 'x') + "\"], \"retired\": 5, \"live\": true}]"),
       "table tcp_sent: a label value longer than 1024 bytes"},
      {table("0", ok_series, "[[\"0g\", 0, 3]]"), "table tcp_sent: a key is not [hex bytes, series, base] or [hex bytes, series, base, value seen]"},
      {table("0", ok_series, "[[\"0a\", 0, -3]]"), "table tcp_sent: a key is not [hex bytes, series, base] or [hex bytes, series, base, value seen]"},
      {table("0", ok_series, "[[\"0a\", 1, 3]]"), "table tcp_sent: a key's series is out of range"},
      {table("0", ok_series, "[[\"0a\", -2, 3]]"), "table tcp_sent: a key's series is out of range"},
      {"{\"format\": 2, \"workloads\": {}, \"tables\": {\"t\": {\"label_names\": []}}}",
       "table t: expected label_names, other, taken, series and keys"},
      {"{\"format\": 2, \"tables\": {}}", "no workloads object"},
      {"{\"format\": 2, \"workloads\": {}, \"tables\": {\"a\\nb\": {}}}", "a table name that is not one of execflow's"},
      {"{\"format\": 2, \"tables\": {}, \"workloads\": {\"12\": [\"a\", \"b\"]}}",
       "workload 12: not a cgroup id and 3 names"},
      {"{\"format\": 2, \"tables\": {}, \"workloads\": {\"-1\": [\"a\", \"b\", \"c\"]}}",
       "workload -1: not a cgroup id and 3 names"},
      {"{\"format\": 2, \"tables\": {}, \"workloads\": {\"99999999999999999999\": [\"a\", \"b\", \"c\"]}}",
       "workload 99999999999999999999: not a cgroup id and 3 names"},
  };
  for (const auto& [text, why] : cases) {
    auto got = DecodeState(text);
    ASSERT_FALSE(got) << text.substr(0, 200);
    EXPECT_EQ(got.error().message, why) << text.substr(0, 200);
  }
}

// A label value that is not valid UTF-8 (a hostile kubelet folder name) must
// not make a scrape throw: it is written with the byte replaced.
TEST_F(StateFileTest, InvalidUtf8InALabelIsReplacedNotThrown) {
  SavedState s = Sample();
  s.tables["tcp_sent"].series[0].labels[1].value = "bad\xff";
  std::string text;
  ASSERT_NO_THROW(text = EncodeState(s));
  auto back = DecodeState(text);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->tables["tcp_sent"].series[0].labels[1].value, "bad\xef\xbf\xbd");
}

TEST_F(StateFileTest, AFileLargerThanTheCapIsRefusedUnread) {
  Write(std::string(kMaxStateFileBytes + 1, ' '));
  auto got = LoadStateFile(path_);
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().message,
            path_ + " is " + std::to_string(kMaxStateFileBytes + 1) + " bytes, more than the 64 MiB a state file may be");
}

// Another user's file in a folder others may write to (a 0777 folder), a
// file others may write, a symbolic link: none is read.
TEST_F(StateFileTest, FilesOthersCouldHaveWrittenAreRefused) {
  Write(EncodeState(Sample()));
  ASSERT_EQ(chmod(path_.c_str(), 0620), 0);
  EXPECT_EQ(LoadStateFile(path_).error().message, path_ + " is writable by other users");
  EXPECT_FALSE(IsOwnStateFile(path_));
  ASSERT_EQ(chmod(path_.c_str(), 0600), 0);
  ASSERT_EQ(chmod((dir_ + "/run").c_str(), 0777), 0);
  EXPECT_EQ(LoadStateFile(path_).error().message, "its folder " + dir_ + "/run is writable by other users");
  EXPECT_FALSE(MakeStateDir(path_));
  ASSERT_EQ(chmod((dir_ + "/run").c_str(), 0700), 0);
  EXPECT_TRUE(LoadStateFile(path_));
  ASSERT_EQ(symlink(path_.c_str(), (dir_ + "/run/link.json").c_str()), 0);
  EXPECT_EQ(LoadStateFile(dir_ + "/run/link.json").error().message, dir_ + "/run/link.json is a symbolic link");
}

TEST_F(StateFileTest, AnotherUsersFileIsRefused) {
  if (geteuid() != 0) {
    if (const char* ci = std::getenv("CI"); ci && std::string(ci) == "true") FAIL() << "CI=true: needs root to chown";
    GTEST_SKIP() << "needs root to give a file to another user";
  }
  Write(EncodeState(Sample()));
  ASSERT_EQ(chown(path_.c_str(), 4242, 4242), 0);
  EXPECT_EQ(LoadStateFile(path_).error().message,
            path_ + " is owned by uid 4242, not by this process's user (uid 0)");
  EXPECT_FALSE(IsOwnStateFile(path_));
}

// Only files it wrote are its own to delete or replace: a typo in
// bpf.state_file that names /etc/something must cost nothing.
TEST_F(StateFileTest, OnlyStateFilesAndJournalsItWroteAreItsOwn) {
  Write(EncodeState(Sample()));
  EXPECT_TRUE(IsOwnStateFile(path_));
  std::ofstream(path_) << "{\"format\":1,\"tables\":{}}\n";
  EXPECT_TRUE(IsOwnStateFile(path_)) << "an earlier version's file";
  std::ofstream(path_) << "";
  EXPECT_TRUE(IsOwnStateFile(path_)) << "an empty journal";
  std::ofstream(path_) << "{\"seq\":1,\"map\":\"m\",\"key\":\"00\",\"values\":[1],\"taken\":false}\n{\"seq\"";
  EXPECT_TRUE(IsOwnStateFile(path_)) << "a journal, torn at its end";
  std::ofstream(path_) << "root:x:0:0:root:/root:/bin/bash\n";
  EXPECT_FALSE(IsOwnStateFile(path_));
  std::ofstream(path_) << "{\"name\": \"some other program's JSON\"}";
  EXPECT_FALSE(IsOwnStateFile(path_));
  EXPECT_FALSE(IsOwnStateFile(dir_ + "/absent"));
}

TEST_F(StateFileTest, TemporariesAKilledWriterLeftAreRemovedAndOnlyThose) {
  ASSERT_TRUE(MakeStateDir(path_));
  const std::string stale = path_ + ".tmp.1";  // pid 1: a container's exporter, killed mid-write
  std::ofstream(stale) << "{\"format\": 2, \"tab";
  ASSERT_EQ(chmod(stale.c_str(), 0600), 0);
  std::ofstream(path_ + ".tmp.notapid") << "x";
  std::ofstream(path_ + ".tmp.22") << "x";
  ASSERT_EQ(chmod((path_ + ".tmp.22").c_str(), 0644), 0);  // not a mode it writes
  EXPECT_EQ(RemoveStaleTemporaries(path_), 1u);
  EXPECT_NE(access(stale.c_str(), F_OK), 0);
  EXPECT_EQ(access((path_ + ".tmp.notapid").c_str(), F_OK), 0);
  EXPECT_EQ(access((path_ + ".tmp.22").c_str(), F_OK), 0);
}

TEST_F(StateFileTest, StateFileWritesWhenATableChangesAndIgnoresOlderStates) {
  ASSERT_TRUE(MakeStateDir(path_));
  const SavedState sample = Sample();
  StateFile f(path_, {}, [&] { return sample.workloads; });
  SavedTables s = sample.tables;
  f.Save("tcp_sent", 5, s["tcp_sent"]);
  EXPECT_EQ(LoadStateFile(path_)->tables.at("tcp_sent"), s["tcp_sent"]);
  SeriesTableState older = s["tcp_sent"];
  older.other = 1;
  f.Save("tcp_sent", 4, older);  // a scrape that lost the race to the file
  EXPECT_EQ(LoadStateFile(path_)->tables.at("tcp_sent"), s["tcp_sent"]);
  f.Save("exec_execs", 1, s["exec_execs"]);
  EXPECT_EQ(*LoadStateFile(path_), sample) << "with the resolver's names, asked at each write";
}

TEST_F(StateFileTest, KeptTablesStayUntilTheirCollectorHandsInItsOwn) {
  ASSERT_TRUE(MakeStateDir(path_));
  SavedTables s = Sample().tables;
  StateFile f(path_, {{"tcp_sent", s["tcp_sent"]}});
  f.Save("exec_execs", 1, s["exec_execs"]);
  EXPECT_EQ(LoadStateFile(path_)->tables, s) << "tcp_sent not handed in yet: written as kept";
  f.Save("tcp_sent", 1, SeriesTableState{});
  EXPECT_EQ(LoadStateFile(path_)->tables.at("tcp_sent"), SeriesTableState{});
}

TEST_F(StateFileTest, AFolderThatIsAFileIsAnError) {
  std::ofstream(dir_ + "/run") << "x";
  auto ok = MakeStateDir(path_);
  ASSERT_FALSE(ok);
  EXPECT_EQ(ok.error().message, dir_ + "/run is not a folder");
}

}  // namespace
}  // namespace execflow
