#include "tools/bench/units.h"

#include <charconv>
#include <cstdint>
#include <cstdio>
#include <limits>

namespace quorum::bench {

bool parse_size(std::string_view text, size_t* bytes) {
  if (text.empty()) return false;
  size_t scale = 1;
  switch (text.back()) {
    case 'K':
    case 'k':
      scale = size_t{1} << 10;
      break;
    case 'M':
    case 'm':
      scale = size_t{1} << 20;
      break;
    case 'G':
    case 'g':
      scale = size_t{1} << 30;
      break;
    default:
      break;
  }
  if (scale != 1) text.remove_suffix(1);
  size_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return false;
  if (value > std::numeric_limits<size_t>::max() / scale) return false;
  *bytes = value * scale;
  return true;
}

std::string format_size(size_t bytes) {
  static constexpr struct {
    size_t scale;
    char suffix;
  } kUnits[] = {{size_t{1} << 30, 'G'}, {size_t{1} << 20, 'M'}, {size_t{1} << 10, 'K'}};
  for (const auto& u : kUnits) {
    if (bytes >= u.scale && bytes % u.scale == 0) {
      return std::to_string(bytes / u.scale) + u.suffix;
    }
  }
  return std::to_string(bytes);
}

std::string format_bytes(double bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int unit = 0;
  while (bytes >= 1024.0 && unit < 4) {
    bytes /= 1024.0;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, unit == 0 ? "%.0f %s" : "%.1f %s", bytes, kUnits[unit]);
  return text;
}

bool parse_dtype(std::string_view text, DataType* type) {
  for (int i = 0; i < kNumDataTypes; ++i) {
    const auto t = static_cast<DataType>(i);
    if (dtype_name(t) == text) {
      *type = t;
      return true;
    }
  }
  return false;
}

}  // namespace quorum::bench
