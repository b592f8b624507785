#include "exporter/events/event_file.h"

#include <gtest/gtest.h>
#include <spdlog/logger.h>
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include "tests/unit/scratch_dir.h"

namespace execflow {
namespace {

mode_t ModeOf(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0;
}

class EventFile : public ::testing::Test {
 protected:
  void SetUp() override {
    old_umask_ = umask(0);  // the worst case: files would be 0666, folders 0777
  }
  void TearDown() override { umask(old_umask_); }
  ScratchDir scratch_{"execflow-events-test"};
  const std::string dir_ = scratch_.path();
  mode_t old_umask_ = 022;
};

TEST_F(EventFile, FoldersAre0750AndEveryFile0640WhateverTheUmask) {
  const std::string path = dir_ + "/log/execflow/events.jsonl";
  auto sink = OpenEventFile(path, 4096, 3);
  ASSERT_TRUE(sink.has_value()) << sink.error().message;
  spdlog::logger log("test", *sink);
  log.set_pattern("%v");
  // ~10 KiB: two rotations.
  for (int i = 0; i < 100; ++i) log.info(std::string(100, 'x'));
  log.flush();
  EXPECT_EQ(ModeOf(dir_ + "/log"), 0750u);
  EXPECT_EQ(ModeOf(dir_ + "/log/execflow"), 0750u);
  EXPECT_EQ(ModeOf(path), 0640u);
  EXPECT_EQ(ModeOf(dir_ + "/log/execflow/events.1.jsonl"), 0640u);
  EXPECT_EQ(ModeOf(dir_ + "/log/execflow/events.2.jsonl"), 0640u);
  EXPECT_EQ(ModeOf(dir_), 0700u);  // mkdtemp's folder is not ours to change
}

TEST_F(EventFile, AnExistingWideFileIsNarrowed) {
  const std::string path = dir_ + "/events.jsonl";
  std::ofstream(path) << "{}\n";
  ASSERT_EQ(chmod(path.c_str(), 0666), 0);
  auto sink = OpenEventFile(path, 1 << 20, 2);
  ASSERT_TRUE(sink.has_value()) << sink.error().message;
  EXPECT_EQ(ModeOf(path), 0640u);
}

TEST_F(EventFile, ErrorsNameThePath) {
  const std::string file = dir_ + "/plain";
  std::ofstream(file) << "";
  auto sink = OpenEventFile(file + "/events.jsonl", 4096, 2);
  ASSERT_FALSE(sink.has_value());
  EXPECT_EQ(sink.error().message, "open events output " + file + "/events.jsonl: Failed opening file " +
                                      file + "/events.jsonl for writing: Not a directory");
}

}  // namespace
}  // namespace execflow
