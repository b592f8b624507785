#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace execflow {

// The length of the valid UTF-8 character that starts at s[i], or 0 if the
// bytes there are not one (overlong forms and surrogates included).
size_t Utf8CharLength(std::string_view s, size_t i);

// `s` as a Prometheus label value: every byte that is not part of a valid
// UTF-8 character, and every control character, becomes U+FFFD. A folder
// name with such bytes would otherwise make Prometheus reject the whole
// scrape ("invalid label value").
std::string LabelValue(std::string_view s);

}  // namespace execflow
