// main() for MPI test binaries: every rank runs the same GoogleTest cases between
// quorum::init() and quorum::shutdown(); only rank 0 prints, and the exit code is non-zero on
// any rank when any rank failed (mpiexec then fails the test).
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
  // The worst result of any rank, so that every rank exits alike and rank 0's line says it (a
  // harness that has to stop a job hung in MPI_Finalize reads that line instead of the exit code).
  int32_t worst = rc;
  quorum::Tensor t{&worst, quorum::DataType::kI32, {1}, quorum::Device::host()};
  quorum::Status agreed = quorum::wait(quorum::enqueue_allreduce("mpi_main.result", t, t, quorum::ReduceOp::kMax));
  if (!agreed.is_ok()) {
    std::fprintf(stderr, "[rank %d] could not agree on the result: %s\n", quorum::rank(), agreed.message().c_str());
    worst = 1;
  }
  rc = worst != 0 ? 1 : 0;
  if (quorum::rank() == 0) {
    std::printf("mpi tests: %s on all %d ranks\n", rc == 0 ? "passed" : "FAILED", quorum::size());
  }
  s = quorum::shutdown();
  if (!s.is_ok()) {
    std::fprintf(stderr, "quorum::shutdown failed: %s\n", s.message().c_str());
    rc = 1;
  }
  return rc;
}
