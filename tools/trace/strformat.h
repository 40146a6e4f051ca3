// strformat.h — printf-style formatting into a std::string, for the text renderers.
#pragma once

#include <string>

namespace quorum::trace {

std::string strformat(const char* f, ...) __attribute__((format(printf, 1, 2)));

}  // namespace quorum::trace
