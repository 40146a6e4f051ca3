// verify.h — exact comparison of a result against the (seed, rank, index) rule's expected
// bytes, and a readable account of the first wrong element. Pure functions, any thread.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "quorum/types.h"

namespace quorum::bench {

struct Mismatch {
  size_t index = 0;  // element index
  std::string got;   // the element's value, as text
  std::string want;
};

// The first of `n` elements of dtype `t` whose bytes differ; nullopt when all are equal.
std::optional<Mismatch> first_mismatch(const void* got, const void* want, size_t n, DataType t);

// Element `i` of a buffer of dtype `t`, as text ("2.5", "-3", "nan").
std::string element_text(const void* buffer, size_t i, DataType t);

}  // namespace quorum::bench
