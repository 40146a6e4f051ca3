// init() when the application left MPI in a state quorum cannot use: initialised without
// MPI_THREAD_MULTIPLE (`single`), or already finalised (`finalized`). init() must return the
// error that says so on every rank, start nothing and leave the process to exit cleanly.
// Usage: mpi_init_mpi_state single|finalized
#include <mpi.h>

#include <cstdio>
#include <string>

#include "quorum/quorum.h"

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  int provided = 0;
  std::string expected;
  if (mode == "single") {
    MPI_Init_thread(&argc, &argv, MPI_THREAD_SINGLE, &provided);
    expected = "the application initialised MPI without MPI_THREAD_MULTIPLE";
  } else if (mode == "finalized") {
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    MPI_Finalize();
    expected = "MPI has already been finalised in this process";
  } else {
    std::fprintf(stderr, "usage: %s single|finalized\n", argv[0]);
    return 2;
  }
  quorum::Status s = quorum::init();
  const bool ok = !s.is_ok() &&
                  s.code() == quorum::StatusCode::kFailedPrecondition &&
                  s.message().find(expected) != std::string::npos && !quorum::is_initialized();
  std::printf("init with MPI %s: %s (%s)\n", mode.c_str(), ok ? "refused as expected" : "FAILED",
              s.message().c_str());
  // A second try gives the same answer and shutdown() has nothing to do.
  quorum::Status again = quorum::init();
  const bool same = again.message() == s.message() && quorum::shutdown().is_ok();
  if (!same) std::printf("second init: FAILED (%s)\n", again.message().c_str());
  if (mode == "single") MPI_Finalize();
  return ok && same ? 0 : 1;
}
