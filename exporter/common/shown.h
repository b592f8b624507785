#pragma once

#include <string>
#include <string_view>

namespace execflow {

// A value from the input as errors show it: quoted, control bytes escaped,
// at most 64 characters of it, so an error never echoes a file that is not
// what it should be (--config.file=/etc/shadow) or a hostile byte.
std::string Shown(std::string_view value);
// A file name as errors show it: whole unless it is absurdly long.
std::string ShownPath(const std::string& path);
// An errno as metrics and events show it: "ENOENT" for 2; the decimal number for values glibc
// has no name for.
std::string ErrnoName(int err);

}  // namespace execflow
