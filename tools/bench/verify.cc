#include "tools/bench/verify.h"

#include <cstdint>
#include <cstdio>
#include <cstring>

#include "ops/half.h"

namespace quorum::bench {

std::string element_text(const void* buffer, size_t i, DataType t) {
  const auto* b = static_cast<const unsigned char*>(buffer) + i * dtype_size(t);
  char text[64] = "";
  switch (t) {
    case DataType::kF16:
    case DataType::kBF16: {
      uint16_t h;
      std::memcpy(&h, b, 2);
      const float f = t == DataType::kF16 ? ops::f16_to_float(h) : ops::bf16_to_float(h);
      std::snprintf(text, sizeof text, "%.9g (0x%04x)", static_cast<double>(f), h);
      break;
    }
    case DataType::kF32: {
      float f;
      std::memcpy(&f, b, 4);
      std::snprintf(text, sizeof text, "%.9g", static_cast<double>(f));
      break;
    }
    case DataType::kF64: {
      double d;
      std::memcpy(&d, b, 8);
      std::snprintf(text, sizeof text, "%.17g", d);
      break;
    }
    case DataType::kI32: {
      int32_t x;
      std::memcpy(&x, b, 4);
      std::snprintf(text, sizeof text, "%d", x);
      break;
    }
    case DataType::kI64: {
      int64_t x;
      std::memcpy(&x, b, 8);
      std::snprintf(text, sizeof text, "%lld", static_cast<long long>(x));
      break;
    }
    case DataType::kU8:
      std::snprintf(text, sizeof text, "%u", unsigned{*b});
      break;
  }
  return text;
}

std::optional<Mismatch> first_mismatch(const void* got, const void* want, size_t n, DataType t) {
  const size_t width = dtype_size(t);
  if (std::memcmp(got, want, n * width) == 0) return std::nullopt;
  const auto* g = static_cast<const unsigned char*>(got);
  const auto* w = static_cast<const unsigned char*>(want);
  for (size_t i = 0; i < n; ++i) {
    if (std::memcmp(g + i * width, w + i * width, width) != 0) {
      return Mismatch{i, element_text(got, i, t), element_text(want, i, t)};
    }
  }
  return std::nullopt;  // unreachable: memcmp saw a difference
}

}  // namespace quorum::bench
