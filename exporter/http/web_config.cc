#include "exporter/http/web_config.h"

#include <spdlog/spdlog.h>

namespace execflow {
namespace {

std::shared_ptr<const WebSettings> Build(WebConfig config) {
  auto s = std::make_shared<WebSettings>();
  s->auth = std::make_shared<BasicAuth>(config.basic_auth_users);
  if (config.rate_limit_interval_seconds > 0) {
    s->rate_limit = std::make_shared<TokenBucket>(1.0 / config.rate_limit_interval_seconds,
                                                  config.rate_limit_burst);
  }
  s->config = std::move(config);
  return s;
}

}  // namespace

bool FileSignature::operator==(const FileSignature& o) const {
  return dev == o.dev && ino == o.ino && size == o.size && mtime.tv_sec == o.mtime.tv_sec &&
         mtime.tv_nsec == o.mtime.tv_nsec && ctime.tv_sec == o.ctime.tv_sec &&
         ctime.tv_nsec == o.ctime.tv_nsec;
}

FileSignature SignatureOf(const std::string& path) {
  struct stat st;
  if (path.empty() || stat(path.c_str(), &st) != 0) return {};
  return {st.st_dev, st.st_ino, st.st_size, st.st_mtim, st.st_ctim};
}

WebConfigWatcher::WebConfigWatcher(std::string path, WebConfig initial)
    : path_(std::move(path)), tls_at_start_(initial.tls.enabled()) {
  sig_ = SignatureOf(path_);
  current_ = Build(std::move(initial));
}

Result<std::shared_ptr<const WebSettings>> WebConfigWatcher::Current() {
  if (path_.empty()) return current_;
  const FileSignature now = SignatureOf(path_);
  std::lock_guard lock(mu_);
  if (now == sig_) {
    if (!error_.empty()) return Fail(error_);
    return current_;
  }
  sig_ = now;
  ++reloads_;
  auto loaded = LoadWebConfigFile(path_);
  if (loaded && loaded->tls.enabled() != tls_at_start_) {
    loaded = Fail(path_ + ": tls_server_config was " + (tls_at_start_ ? "removed" : "added") +
                  "; restart execflow to serve " + (tls_at_start_ ? "plain HTTP" : "HTTPS"));
  }
  if (!loaded) {
    error_ = loaded.error().message;
    last_ok_ = false;
    spdlog::error("web config not reloaded, refusing requests that need it: {}", error_);
    return Fail(error_);
  }
  error_.clear();
  last_ok_ = true;
  current_ = Build(std::move(*loaded));
  spdlog::info("web config reloaded from {}: basic_auth_users={} tls={}", path_,
               current_->config.basic_auth_users.size(), current_->config.tls.enabled());
  return current_;
}

}  // namespace execflow
