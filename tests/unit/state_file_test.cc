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

SavedTables Sample() {
  SeriesTableState tcp;
  tcp.other_labels = {"saddr", "daddr", "dport"};
  tcp.series.push_back({{{"saddr", "127.0.0.1"}, {"daddr", "127.0.0.1"}, {"dport", "8080"}}, 9007199254740991, false});
  tcp.series.push_back({{{"saddr", "::1"}, {"daddr", "\"quoted\"\n"}, {"dport", "443"}}, -100, true});
  tcp.other = 17;
  tcp.taken = 18446744073709551615ull;
  SeriesTableState execs;
  execs.other_labels = {"uid"};
  return {{"tcp_sent", tcp}, {"exec_execs", execs}};
}

TEST_F(StateFileTest, WhatIsWrittenIsReadBackExactly) {
  ASSERT_TRUE(MakeStateDir(path_));
  struct stat st;
  ASSERT_EQ(stat((dir_ + "/run").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  ASSERT_TRUE(WriteStateFile(path_, Sample()));
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_NE(access((path_ + ".tmp").c_str(), F_OK), 0) << "the temporary file was renamed";
  auto back = LoadStateFile(path_);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, Sample()) << "2^53-1 and a negative total survive; labels are escaped";
  // Rewritten in place of the old one.
  SavedTables less = Sample();
  less.erase("tcp_sent");
  ASSERT_TRUE(WriteStateFile(path_, less));
  EXPECT_EQ(*LoadStateFile(path_), less);
}

TEST_F(StateFileTest, AMissingFileIsAnEmptyState) {
  auto s = LoadStateFile(path_);
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_TRUE(s->empty());
}

TEST_F(StateFileTest, ACorruptFileIsAnErrorNamingTheFile) {
  const std::string text = EncodeState(Sample());
  Write(text.substr(0, text.size() / 2));  // a torn write
  auto s = LoadStateFile(path_);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message, path_ + ": not valid JSON");
  Write("{\"format\": 2, \"tables\": {}}");
  EXPECT_EQ(LoadStateFile(path_).error().message, path_ + ": not format 1");
  Write("{\"format\": 1, \"tables\": {\"tcp_sent\": {\"label_names\": [], \"other\": 0, "
        "\"series\": [{\"labels\": [[\"a\", 1]], \"retired\": 5, \"live\": true}]}}}");
  EXPECT_EQ(LoadStateFile(path_).error().message,
            path_ + ": table tcp_sent: a label is not a [name, value] pair of strings");
  Write("[]");
  EXPECT_EQ(LoadStateFile(path_).error().message, path_ + ": not format 1");
  Write("");
  EXPECT_EQ(LoadStateFile(path_).error().message, path_ + ": not valid JSON");
}

TEST_F(StateFileTest, StateFileWritesWhenATableChangesAndIgnoresOlderStates) {
  ASSERT_TRUE(MakeStateDir(path_));
  StateFile f(path_);
  SavedTables s = Sample();
  f.Save("tcp_sent", 5, s["tcp_sent"]);
  EXPECT_EQ(LoadStateFile(path_)->at("tcp_sent"), s["tcp_sent"]);
  SeriesTableState older = s["tcp_sent"];
  older.other = 1;
  f.Save("tcp_sent", 4, older);  // a scrape that lost the race to the file
  EXPECT_EQ(LoadStateFile(path_)->at("tcp_sent"), s["tcp_sent"]);
  f.Save("exec_execs", 1, s["exec_execs"]);
  EXPECT_EQ(*LoadStateFile(path_), s);
}

TEST_F(StateFileTest, KeptTablesStayUntilTheirCollectorHandsInItsOwn) {
  ASSERT_TRUE(MakeStateDir(path_));
  SavedTables s = Sample();
  StateFile f(path_, {{"tcp_sent", s["tcp_sent"]}});
  f.Save("exec_execs", 1, s["exec_execs"]);
  EXPECT_EQ(*LoadStateFile(path_), s) << "tcp_sent not handed in yet: written as kept";
  f.Save("tcp_sent", 1, SeriesTableState{});
  EXPECT_EQ(LoadStateFile(path_)->at("tcp_sent"), SeriesTableState{});
}

TEST_F(StateFileTest, AFolderThatIsAFileIsAnError) {
  std::ofstream(dir_ + "/run") << "x";
  auto ok = MakeStateDir(path_);
  ASSERT_FALSE(ok);
  EXPECT_EQ(ok.error().message, dir_ + "/run is not a folder");
}

}  // namespace
}  // namespace execflow
