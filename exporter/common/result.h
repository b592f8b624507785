#pragma once

#include <cerrno>
#include <cstring>
#include <expected>
#include <string>

namespace execflow {

// An error from the kernel or from input, carried as a value. `message` says
// what was being done and why it failed, lower-case, ready to log:
// "attach tp_btf/sched_process_exec: Operation not permitted".
struct Error {
  std::string message;
  int err = 0;  // positive errno when the kernel said no, 0 otherwise
};

template <typename T = void>
using Result = std::expected<T, Error>;

inline std::unexpected<Error> Fail(std::string what, int err = 0) {
  if (err != 0) what += ": " + std::string(std::strerror(err));
  return std::unexpected(Error{std::move(what), err});
}

// libbpf returns -errno (and sets errno); accept either sign.
inline std::unexpected<Error> FailErrno(std::string what, int ret) {
  return Fail(std::move(what), ret < 0 ? -ret : (ret > 0 ? ret : errno));
}

}  // namespace execflow
