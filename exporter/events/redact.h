#pragma once

#include <string>
#include <vector>

namespace execflow {

// Keeps secrets on command lines out of exec events (events.redact). Each argument is
// read as NAME=VALUE or as a flag (-NAME, --NAME) whose value is the next argument; the
// value is replaced by "*****" when NAME, in lower case with '_' read as '-', is one of
// `names` or ends with '-' and one of them ("--db-password=x", "MYSQL_PWD=x",
// "--token x"). The password of a URL's user ("https://user:pw@host") is replaced too.
// Without patterns, so a hostile command line costs one pass over its bytes.
class ArgRedactor {
 public:
  ArgRedactor(std::vector<std::string> names, bool url_passwords);
  // Redacts in place; how many values it replaced.
  size_t Redact(std::vector<std::string>* args) const;

 private:
  bool Secret(std::string_view name) const;
  std::vector<std::string> names_;
  bool url_passwords_;
};

inline constexpr const char* kRedacted = "*****";

}  // namespace execflow
