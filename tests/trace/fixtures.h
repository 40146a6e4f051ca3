// fixtures.h — paths of the hand-written traces under tests/trace/fixtures and a loader that
// fails the test with the loader's message.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tools/trace/inputs.h"

namespace quorum::trace::testing {

inline std::string fixture(const std::string& relative) {
  return std::string(TRACE_FIXTURES) + "/" + relative;
}

// two/: ranks 0 and 1, 2 steps, rank 1's clock 250.5 µs ahead (clock_offset_us -250.5).
// three/: ranks 0..2, modes, a dropped-events note on rank 0, rank 2 killed during step 2.
inline std::vector<TraceFile> load_fixture_run(const std::string& prefix) {
  std::vector<TraceFile> traces;
  Status s = load_run({fixture(prefix)}, &traces);
  EXPECT_TRUE(s.is_ok()) << s.message();
  return traces;
}

}  // namespace quorum::trace::testing
