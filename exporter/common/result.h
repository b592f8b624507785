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

// strerror(err), and words for the kernel's own ENOTSUPP (524), which the C library
// does not name ("Unknown error 524"): the kernel refuses fexit that way on arm64
// before 6.0, which has no BPF trampolines.
inline std::string ErrnoText(int err) {
  constexpr int kKernelEnotsupp = 524;
  if (err == kKernelEnotsupp) return "not supported by this kernel (ENOTSUPP, 524)";
  return std::strerror(err);
}

inline std::unexpected<Error> Fail(std::string what, int err = 0) {
  if (err != 0) what += ": " + ErrnoText(err);
  return std::unexpected(Error{std::move(what), err});
}

// libbpf returns -errno (and sets errno); accept either sign.
inline std::unexpected<Error> FailErrno(std::string what, int ret) {
  return Fail(std::move(what), ret < 0 ? -ret : (ret > 0 ? ret : errno));
}

}  // namespace execflow
