// Tensor names quorum itself uses, which the coordinator and the engines treat specially.
#pragma once

#include <string_view>

namespace quorum {

// average_parameters() sends each tensor as "quorum.params.<name>": such rounds always run
// synchronously (never bounded: a late rank's parameters are not a late gradient) and are never
// compressed (parameters must stay exact and identical on every rank).
inline constexpr std::string_view kParameterPrefix = "quorum.params.";

inline bool is_parameter_name(std::string_view name) {
  return name.substr(0, kParameterPrefix.size()) == kParameterPrefix;
}

}  // namespace quorum
