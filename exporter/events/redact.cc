#include "exporter/events/redact.h"

#include <algorithm>
#include <cctype>
#include <string_view>

namespace execflow {

namespace {

std::string Normal(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// "https://user:pw@host/..." -> "https://user:*****@host/...": the user part ends at the
// first '@' before the path; its password follows the first ':'.
bool RedactUrlPassword(std::string* arg) {
  bool changed = false;
  for (size_t scheme = arg->find("://"); scheme != std::string::npos; scheme = arg->find("://", scheme + 3)) {
    const size_t start = scheme + 3;
    // The authority: up to the path, query or fragment. Each search stays inside it, so
    // a hostile argument costs one pass however many "://" it holds.
    const std::string_view authority = std::string_view(*arg).substr(start).substr(
        0, arg->find_first_of("/?#", start) - start);
    const size_t at = authority.rfind('@');
    if (at == std::string_view::npos) continue;
    const size_t colon = authority.substr(0, at).find(':');
    if (colon == std::string_view::npos) continue;
    arg->replace(start + colon + 1, at - colon - 1, kRedacted);
    changed = true;
  }
  return changed;
}

}  // namespace

ArgRedactor::ArgRedactor(std::vector<std::string> names, bool url_passwords)
    : url_passwords_(url_passwords) {
  for (const auto& n : names) names_.push_back(Normal(n));
}

bool ArgRedactor::Secret(std::string_view name) const {
  const std::string n = Normal(name);
  return std::any_of(names_.begin(), names_.end(), [&](const std::string& w) {
    return n == w || (n.size() > w.size() && n.compare(n.size() - w.size(), w.size(), w) == 0 &&
                      n[n.size() - w.size() - 1] == '-');
  });
}

size_t ArgRedactor::Redact(std::vector<std::string>* args) const {
  size_t n = 0;
  for (size_t i = 0; i < args->size(); ++i) {
    std::string& a = (*args)[i];
    const size_t dashes = a.find_first_not_of('-');
    if (dashes == std::string::npos) continue;  // "", "-", "--"
    const size_t eq = a.find('=');
    if (eq != std::string::npos && eq > dashes) {
      if (Secret(std::string_view(a).substr(dashes, eq - dashes))) {
        a.replace(eq + 1, std::string::npos, kRedacted);
        ++n;
        continue;
      }
    } else if (eq == std::string::npos && dashes > 0 && dashes <= 2 && i + 1 < args->size() &&
               Secret(std::string_view(a).substr(dashes))) {
      (*args)[++i] = kRedacted;  // the flag's value, the next argument
      ++n;
      continue;
    }
    if (url_passwords_ && RedactUrlPassword(&a)) ++n;
  }
  return n;
}

}  // namespace execflow
