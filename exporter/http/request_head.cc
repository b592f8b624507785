#include "exporter/http/request_head.h"

#include <algorithm>
#include <cstring>

namespace execflow {
namespace {

bool EqualsNoCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return (x >= 'A' && x <= 'Z' ? x | 0x20 : x) == (y >= 'A' && y <= 'Z' ? y | 0x20 : y);
         });
}

// RFC 9110 5.6.2: tchar.
bool IsTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return c != '\0' && std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

bool IsToken(std::string_view s) { return !s.empty() && std::all_of(s.begin(), s.end(), IsTokenChar); }

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

HeadProblem CheckRequestHead(std::string_view version, std::span<const HeaderField> headers) {
  if (version != "1.0" && version != "1.1") return HeadProblem::kVersion;
  for (const HeaderField& h : headers) {
    if (EqualsNoCase(h.name, "Content-Length") || EqualsNoCase(h.name, "Transfer-Encoding")) {
      return HeadProblem::kBody;
    }
    if (!IsToken(h.name)) return HeadProblem::kHeaderName;
  }
  return HeadProblem::kNone;
}

std::string AnswerToUnparsedRequest(int status, std::string_view version) {
  int code = 400;
  const char* reason = "Bad Request";
  const char* body = "bad request\n";
  if (status == 505) {
    // A numeric version is well formed, if not served; anything else is a bad request line.
    if (version.size() == 3 && IsDigit(version[0]) && version[1] == '.' && IsDigit(version[2])) {
      code = 505;
      reason = "HTTP Version Not Supported";
      body = "HTTP/1.0 and HTTP/1.1 only\n";
    }
  } else if (status == 404) {
    code = 404;
    reason = "Not Found";
    body = "not found\n";
  } else if (status == 503) {
    code = 503;
    reason = "Service Unavailable";
    body = "unavailable\n";
  } else if (status >= 500) {
    code = 500;
    reason = "Internal Server Error";
    body = "internal server error\n";
  }
  return "HTTP/1.1 " + std::to_string(code) + " " + reason +
         "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " +
         std::to_string(std::strlen(body)) + "\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n" + body;
}

}  // namespace execflow
