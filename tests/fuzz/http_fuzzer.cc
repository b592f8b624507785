// libFuzzer: what a client controls before authentication. The first byte
// picks the Authorization header parser, BasicAuth::Check (against one
// bcrypt user, cost 4) or the query parser of /api/v1/events; a parsed
// header must hold no control byte and a user without ':'.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "exporter/http/auth.h"
#include "exporter/http/query.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return -1;
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
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
    default: {
      auto q = execflow::QueryUint(in, "limit", 1000000);
      if (q && *q && **q > 1000000) std::abort();
    }
  }
  return 0;
}
