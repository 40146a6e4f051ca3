// main() for MPI test binaries: every rank runs the same GoogleTest cases between
// quorum::init() and quorum::shutdown(); only rank 0 prints, and the exit code is non-zero on
// any rank that failed (mpiexec then fails the test).
#pragma once

#include <gtest/gtest.h>

#include "quorum/quorum.h"

inline int run_mpi_tests(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  quorum::Status s = quorum::init();
  if (!s.is_ok()) {
    std::fprintf(stderr, "quorum::init failed: %s\n", s.message().c_str());
    return 1;
  }
  if (quorum::rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    // Keep failures visible from every rank, but not the progress lines.
    delete listeners.Release(listeners.default_result_printer());  // Release hands it to us
    class FailurePrinter : public ::testing::EmptyTestEventListener {
      void OnTestPartResult(const ::testing::TestPartResult& r) override {
        if (r.failed()) {
          std::fprintf(stderr, "[rank %d] %s:%d: %s\n", quorum::rank(), r.file_name(),
                       r.line_number(), r.summary());
        }
      }
    };
    listeners.Append(new FailurePrinter);
  }
  int rc = RUN_ALL_TESTS();
  s = quorum::shutdown();
  if (!s.is_ok()) {
    std::fprintf(stderr, "quorum::shutdown failed: %s\n", s.message().c_str());
    rc = 1;
  }
  return rc;
}
