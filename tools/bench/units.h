// units.h — the text forms quorum-bench reads and prints: byte sizes with K/M/G suffixes and
// dtype names. Pure functions, any thread.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "quorum/types.h"

namespace quorum::bench {

// "4", "4K", "256M", "1G" (binary multiples; lower-case suffixes too). False on anything else,
// including overflow; *bytes is untouched then.
bool parse_size(std::string_view text, size_t* bytes);

// The shortest exact form: 4096 -> "4K", 3000 -> "3000".
std::string format_size(size_t bytes);

// A human approximation for prose: 1536 -> "1.5 KiB".
std::string format_bytes(double bytes);

// f32, f64, f16, bf16, i32, i64, u8. False on anything else.
bool parse_dtype(std::string_view text, DataType* type);

}  // namespace quorum::bench
