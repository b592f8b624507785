#include "exporter/bpf/pinning.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "exporter/config/config.h"
#include "exporter/flags.h"

namespace execflow {
namespace {

StateLayout Exec() {
  StateLayout l;
  l.object_hash = 0x0123456789abcdefULL;
  l.programs = {"exec_btf", "execve_exit_tp"};
  l.maps = {{"exec_counts", 1, 16, 8, 10240, 0}, {"exec_bpf_bss", 2, 4, 24, 1, 1024}};
  return l;
}

TEST(Pinning, StampNamesEverythingTheStateIsBuiltFrom) {
  EXPECT_EQ(LayoutStamp(Exec()),
            "execflow-pin/1 object=0123456789abcdef programs=exec_btf,execve_exit_tp "
            "maps=exec_counts:1:16:8:10240:0,exec_bpf_bss:2:4:24:1:1024");
}

TEST(Pinning, AnyChangeChangesTheStamp) {
  const std::string base = LayoutStamp(Exec());
  StateLayout l = Exec();
  l.object_hash ^= 1;  // other BPF code or settings (.rodata)
  EXPECT_NE(LayoutStamp(l), base);
  l = Exec();
  l.programs = {"exec_tp", "execve_exit_tp"};  // another hook mode
  EXPECT_NE(LayoutStamp(l), base);
  l = Exec();
  l.maps[0].max_entries = 20480;  // exec.max_uids
  EXPECT_NE(LayoutStamp(l), base);
  l = Exec();
  l.maps[1].value_size = 32;  // a counter added to .bss
  EXPECT_NE(LayoutStamp(l), base);
  EXPECT_EQ(LayoutStamp(Exec()), base);
}

TEST(Pinning, Fnv1a) {
  // The reference values of the FNV-1a 64-bit test suite.
  EXPECT_EQ(Fnv1a(""), 0xcbf29ce484222325ULL);
  EXPECT_EQ(Fnv1a("a"), 0xaf63dc4c8601ec8cULL);
  EXPECT_EQ(Fnv1a("foobar"), 0x85944171f73967e8ULL);
  EXPECT_EQ(Fnv1a("bar", Fnv1a("foo")), Fnv1a("foobar"));
}

TEST(Pinning, PinPathValues) {
  EXPECT_EQ(ParsePinPath("off").value(), "");
  EXPECT_EQ(ParsePinPath("/sys/fs/bpf/execflow").value(), "/sys/fs/bpf/execflow");
  EXPECT_EQ(ParsePinPath("/run/bpf/a-b_c.1").value(), "/run/bpf/a-b_c.1");
  const std::string expected =
      "expected off or an absolute path on a bpf filesystem such as /sys/fs/bpf/execflow (";
  EXPECT_EQ(ParsePinPath("sys/fs/bpf").error().message, expected + "absolute, not /), got 'sys/fs/bpf'");
  EXPECT_EQ(ParsePinPath("/").error().message, expected + "absolute, not /), got '/'");
  EXPECT_EQ(ParsePinPath("").error().message, expected + "1 to 200 bytes), got ''");
  EXPECT_EQ(ParsePinPath("/sys/fs/bpf/").error().message, expected + "no trailing /), got '/sys/fs/bpf/'");
  EXPECT_EQ(ParsePinPath("/sys/fs/bpf/../x").error().message,
            expected + "no empty, . or .. components), got '/sys/fs/bpf/../x'");
  EXPECT_EQ(ParsePinPath("/sys//bpf").error().message,
            expected + "no empty, . or .. components), got '/sys//bpf'");
  EXPECT_EQ(ParsePinPath("/sys/fs/bpf/a b").error().message,
            expected + "no spaces or control characters), got '/sys/fs/bpf/a b'");
  EXPECT_FALSE(ParsePinPath("/" + std::string(200, 'a')));
}

TEST(Pinning, ConfigKey) {
  auto d = ParseConfig("", "test.yaml");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->bpf.pin_path, "/sys/fs/bpf/execflow");
  auto off = ParseConfig("bpf:\n  pin_path: off\n", "test.yaml");
  ASSERT_TRUE(off);
  EXPECT_EQ(off->bpf.pin_path, "");
  auto other = ParseConfig("bpf:\n  pin_path: /sys/fs/bpf/node-a\n", "test.yaml");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->bpf.pin_path, "/sys/fs/bpf/node-a");
  auto bad = ParseConfig("bpf:\n  run_time_stats: false\n  pin_path: [a]\n", "test.yaml");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message,
            "test.yaml:3: bpf.pin_path: expected off or an absolute path on a bpf filesystem such "
            "as /sys/fs/bpf/execflow (1 to 200 bytes), got ''");
}

TEST(Pinning, UnpinFlag) {
  const char* argv[] = {"execflow_exporter", "--bpf.unpin"};
  auto f = ParseFlags(2, argv);
  ASSERT_TRUE(f);
  EXPECT_TRUE(f->unpin);
  const char* with_value[] = {"execflow_exporter", "--bpf.unpin=yes"};
  EXPECT_EQ(ParseFlags(2, with_value).error().message, "flag --bpf.unpin takes no value");
  const char* twice[] = {"execflow_exporter", "--bpf.unpin", "--bpf.unpin"};
  EXPECT_EQ(ParseFlags(3, twice).error().message,
            "flag --bpf.unpin given twice (only --web.listen-address can be repeated)");
}

TEST(Pinning, NotBpffs) {
  EXPECT_FALSE(OnBpffs("/tmp"));
  EXPECT_FALSE(OnBpffs("/tmp/execflow-no-such-folder"));
  auto r = PinRoot::Open("/tmp/execflow-no-such-folder");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message,
            "bpf.pin_path /tmp/execflow-no-such-folder: /tmp is not a bpf filesystem (mount one: "
            "mount -t bpf bpf /tmp; or set bpf.pin_path: off)");
}

// RemovePinned works on any folder: here one in /tmp stands for bpffs.
TEST(Pinning, RemovePinnedSaysWhatWentAndFollowsNoSymlink) {
  namespace fs = std::filesystem;
  const fs::path tmp = fs::temp_directory_path() / ("execflow-unpin-" + std::to_string(getpid()));
  const fs::path dir = tmp / "exec", outside = tmp / "outside";
  fs::create_directories(dir / "maps");
  fs::create_directories(dir / "links" / "deeper");
  fs::create_directories(outside);
  for (const fs::path& p : {dir / "stamp", dir / "maps" / "exec_counts", dir / "links" / "exec_btf",
                            dir / "links" / "deeper" / "x", outside / "keep"}) {
    std::ofstream(p) << "x";
  }
  fs::create_directory_symlink(outside, dir / "to_outside");
  fs::create_symlink(outside / "keep", dir / "maps" / "to_keep");
  auto removed = RemovePinned(dir);
  ASSERT_TRUE(removed) << removed.error().message;
  std::sort(removed->begin(), removed->end());
  EXPECT_EQ(*removed, (std::vector<std::string>{"links/deeper/x", "links/exec_btf", "maps/exec_counts",
                                                "maps/to_keep", "stamp", "to_outside"}));
  EXPECT_FALSE(fs::exists(fs::symlink_status(dir)));
  EXPECT_TRUE(fs::exists(outside / "keep"));  // a symlink goes, never what it points to
  auto again = RemovePinned(dir);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_TRUE(again->empty());
  fs::remove_all(tmp);
}

}  // namespace
}  // namespace execflow
