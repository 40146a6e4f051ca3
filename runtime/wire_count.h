// Small integer counts stored as elements of a wire buffer (f32, f64, i32, i64, u8; exact for
// counts that small): the per-tensor gradient counts of a counted round, a fold's count, and a
// voted fast-path entry's vote.
#pragma once

#include <cstddef>
#include <cstdint>

#include "quorum/types.h"

namespace quorum {

// Element `i` of `buf` as a double (0 for another dtype).
double read_count(const unsigned char* buf, DataType wire, size_t i);
// Writes `count` as element `i` of `buf` (nothing for another dtype).
void write_count(unsigned char* buf, DataType wire, size_t i, int64_t count);

}  // namespace quorum
