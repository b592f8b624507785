#include "exporter/events/event_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/sinks/rotating_file_sink.h>

#include <cstdio>

#include "exporter/common/unique_fd.h"

namespace execflow {
namespace {

constexpr mode_t kFileMode = 0640;
constexpr mode_t kDirMode = 0750;

// Creates each missing folder of `path`'s parent with kDirMode exactly.
Result<void> MakeParents(const std::string& path) {
  for (size_t slash = path.find('/', 1); slash != std::string::npos; slash = path.find('/', slash + 1)) {
    const std::string dir = path.substr(0, slash);
    if (mkdir(dir.c_str(), kDirMode) == 0) {
      if (chmod(dir.c_str(), kDirMode) != 0) return Fail("chmod " + dir, errno);
    } else if (errno != EEXIST) {
      return Fail("create folder " + dir, errno);
    }
  }
  return {};
}

}  // namespace

Result<std::shared_ptr<spdlog::sinks::sink>> OpenEventFile(const std::string& path, uint64_t max_bytes,
                                                           uint32_t max_files) {
  if (auto ok = MakeParents(path); !ok) return std::unexpected(ok.error());
  spdlog::file_event_handlers handlers;
  // spdlog opens with fopen(), whose mode is 0666 less the umask; the file
  // is created here first, never wider than 0640, then set to 0640.
  handlers.before_open = [](const spdlog::filename_t& name) {
    UniqueFd fd(open(name.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, kFileMode));
    if (fd) fchmod(fd.get(), kFileMode);
  };
  handlers.after_open = [](const spdlog::filename_t&, std::FILE* f) { fchmod(fileno(f), kFileMode); };
  try {
    return std::make_shared<spdlog::sinks::rotating_file_sink_mt>(path, max_bytes, max_files, false,
                                                                  handlers);
  } catch (const spdlog::spdlog_ex& e) {
    return Fail("open events output " + path + ": " + e.what());
  }
}

}  // namespace execflow
