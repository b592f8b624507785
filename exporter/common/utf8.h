#pragma once

#include <string>
#include <string_view>

namespace execflow {

// `s` as a Prometheus label value: every byte that is not part of a valid
// UTF-8 character, and every control character, becomes U+FFFD. A folder
// name with such bytes would otherwise make Prometheus reject the whole
// scrape ("invalid label value").
std::string LabelValue(std::string_view s);

}  // namespace execflow
