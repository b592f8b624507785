#pragma once

#include <span>
#include <string>
#include <string_view>

namespace execflow {

// The checks made on a request's head (request line and headers, as civetweb
// split them) before anything else looks at it, and the answers to requests
// civetweb could not parse. Nothing a client sent is ever put into an answer.

struct HeaderField {
  std::string_view name;
  std::string_view value;
};

// What refuses a request with 400, closing its connection:
// - kBody: a Content-Length or Transfer-Encoding header, whatever its value,
//   case or number. No endpoint takes a body, and a body is where a second
//   request hides: civetweb reads the first of two Content-Lengths, and the
//   number that starts "0, 44" or "0x"; a proxy in front may read the other
//   one and forward the "body" as a request of its own.
// - kHeaderName: a header name that is not an RFC 9110 token (civetweb takes
//   any printable bytes but ':'), which proxies may read differently too.
// - kVersion: a version other than 1.0 and 1.1 (civetweb refuses those first).
enum class HeadProblem { kNone, kBody, kHeaderName, kVersion };
HeadProblem CheckRequestHead(std::string_view version, std::span<const HeaderField> headers);

// The complete answer to a request civetweb refused with `status` while
// parsing it. civetweb's own error page would start with "HTTP/" followed by
// whatever the client sent as its version, and quote it in the body; this is
// fixed text: 505 for a version that is a number ("HTTP/2.0"), 404, 503 and
// other 5xx (as 500) as they are, 400 for everything else (civetweb 1.15 says
// 400 for a head over max_request_size too).
// `version` is what civetweb parsed as the version, if anything.
std::string AnswerToUnparsedRequest(int status, std::string_view version);

}  // namespace execflow
