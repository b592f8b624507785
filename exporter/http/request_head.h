#pragma once

#include <span>
#include <string>
#include <string_view>

namespace execflow {

// Checks of a request's head (as civetweb split it) before anything else reads
// it, and answers to requests civetweb could not parse. No answer echoes the client.

struct HeaderField {
  std::string_view name;
  std::string_view value;
};

// Refused with 400, connection closed:
// - kBody: any Content-Length or Transfer-Encoding. No endpoint takes a body, and a
//   body can hide a second request: civetweb reads the first of two Content-Lengths
//   and the leading number of "0, 44" or "0x", a proxy in front may read another.
// - kHeaderName: not an RFC 9110 token (civetweb takes any printable byte but ':',
//   proxies may differ).
// - kVersion: not 1.0 or 1.1 (civetweb refuses those first).
enum class HeadProblem { kNone, kBody, kHeaderName, kVersion };
HeadProblem CheckRequestHead(std::string_view version, std::span<const HeaderField> headers);

// The whole answer to a request civetweb refused with `status` while parsing it
// (`version`: as parsed, if any). Fixed text: civetweb's own echoes the client's version.
// 505 for a numeric version ("HTTP/2.0"), 404 and 503 as they are, other 5xx as 500,
// else 400 (civetweb 1.15 also says 400 for a head over max_request_size).
std::string AnswerToUnparsedRequest(int status, std::string_view version);

}  // namespace execflow
