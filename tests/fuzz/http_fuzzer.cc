// libFuzzer: what a client controls before authentication. The first byte
// picks the Authorization header parser, BasicAuth::Check (against one
// bcrypt user, cost 4), the query parser of /api/v1/events, or the checks of
// a request's head and the answer to an unparsed request. A parsed header must
// hold no control byte and a user without ':'; a head with a body header must
// be refused; an answer must be one of the fixed ones.
#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "exporter/http/auth.h"
#include "exporter/http/query.h"
#include "exporter/http/request_head.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return -1;
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0: {
      auto c = execflow::ParseBasicAuthorization(in);
      if (c) {
        if (c->user.find(':') != std::string::npos) std::abort();
        for (char ch : c->user + c->password) {
          if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) std::abort();
        }
      }
      break;
    }
    case 1: {
      // "prometheus" / "s3cret"; the bucket empties after a few failures,
      // so most inputs test the throttled path, as a flood does.
      static execflow::BasicAuth auth(
          {{"prometheus", "$2b$04$4QQtQ3R1E/0MN5ZRwhCWbeqZeSXv0QLZL9BTV17Bb2xKRLGfGmYvi"}});
      const std::string header(in);
      if (auth.Check(header.c_str()) == execflow::AuthResult::kAllowed) {
        auto c = execflow::ParseBasicAuthorization(header.c_str());  // what Check() saw
        if (!c || c->user != "prometheus" || c->password != "s3cret") std::abort();
      }
      break;
    }
    case 2: {
      auto q = execflow::QueryUint(in, "limit", 1000000);
      if (q && *q && **q > 1000000) std::abort();
      break;
    }
    default: {
      // "version\nname:value\nname:value..." as civetweb would have split it.
      std::vector<std::string_view> lines;
      for (size_t at = 0; at <= in.size();) {
        const size_t nl = std::min(in.find('\n', at), in.size());
        lines.push_back(in.substr(at, nl - at));
        at = nl + 1;
      }
      std::vector<execflow::HeaderField> headers;
      bool body = false;
      for (size_t i = 1; i < lines.size(); ++i) {
        const size_t colon = std::min(lines[i].find(':'), lines[i].size());
        headers.push_back({lines[i].substr(0, colon), lines[i].substr(std::min(colon + 1, lines[i].size()))});
        std::string name(headers.back().name);
        for (char& c : name) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c | 0x20) : c;
        body = body || name == "content-length" || name == "transfer-encoding";
      }
      const auto problem = execflow::CheckRequestHead(lines[0], headers);
      const bool version_ok = lines[0] == "1.0" || lines[0] == "1.1";
      if (body && version_ok && problem == execflow::HeadProblem::kNone) std::abort();
      if (!version_ok && problem != execflow::HeadProblem::kVersion) std::abort();
      // Nothing of the request in the answer to one civetweb could not parse:
      // whatever the version, the answer is one of a few fixed texts.
      static const std::set<std::string> kFixed = [] {
        std::set<std::string> fixed;
        for (int status = 400; status < 656; ++status) {
          for (const char* v : {"", "2.0"}) fixed.insert(execflow::AnswerToUnparsedRequest(status, v));
        }
        return fixed;
      }();
      const int status = 400 + (size > 1 ? data[1] : 0);
      if (!kFixed.count(execflow::AnswerToUnparsedRequest(status, lines[0]))) std::abort();
    }
  }
  return 0;
}
