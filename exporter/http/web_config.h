#pragma once

#include <sys/stat.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "exporter/common/result.h"
#include "exporter/config/web_config.h"
#include "exporter/http/auth.h"

namespace execflow {

// What a file looked like: a change to any of these means it changed
// (Kubernetes swaps a symlink: new inode; an editor rewrites: new mtime).
struct FileSignature {
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = -1;
  timespec mtime{};
  timespec ctime{};
  bool operator==(const FileSignature& o) const;
};
FileSignature SignatureOf(const std::string& path);  // size -1 when stat fails

// One version of --web.config.file and what is built from it.
struct WebSettings {
  WebConfig config;
  std::shared_ptr<BasicAuth> auth;         // never null; disabled without users
  std::shared_ptr<TokenBucket> rate_limit;  // null: no rate_limit
};

// --web.config.file, re-read when it changes (exporter-toolkit: per request). While it
// does not parse, Current() fails and requests needing it are refused (fail closed);
// the error is logged once per version of the file.
class WebConfigWatcher {
 public:
  // `initial` is the parsed file as start-up checked it; empty path: no file.
  WebConfigWatcher(std::string path, WebConfig initial);
  Result<std::shared_ptr<const WebSettings>> Current();
  const std::string& path() const { return path_; }
  bool last_load_ok() const { return last_ok_.load(); }
  uint64_t reloads() const { return reloads_.load(); }

 private:
  const std::string path_;
  const bool tls_at_start_;
  std::mutex mu_;
  FileSignature sig_;
  std::shared_ptr<const WebSettings> current_;
  std::string error_;  // non-empty: the file as it is now does not load
  std::atomic<bool> last_ok_{true};
  std::atomic<uint64_t> reloads_{0};
};

}  // namespace execflow
