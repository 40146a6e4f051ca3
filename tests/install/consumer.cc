// A C++ program built against the installed quorum alone (pkg-config quorum; see
// install_consumer.sh): an allreduce and an allgather with exact results under mpiexec -n 2.
#include <quorum/quorum.h>

#include <cstdio>
#include <vector>

int main() {
  if (quorum::Status s = quorum::init(); !s.is_ok()) {
    std::fprintf(stderr, "init: %s\n", s.message().c_str());
    return 1;
  }
  const int rank = quorum::rank(), size = quorum::size();
  bool good = true;
  std::vector<double> v{static_cast<double>(rank), 1.0};
  quorum::Tensor t{v.data(), quorum::DataType::kF64, {2}, quorum::Device::host()};
  good &=
      quorum::wait(quorum::enqueue_allreduce("consumer.sum", t, t, quorum::ReduceOp::kSum)).is_ok();
  good &= v[0] == size * (size - 1) / 2.0 && v[1] == size;
  quorum::Tensor mine{&v[1], quorum::DataType::kF64, {1}, quorum::Device::host()};
  std::vector<double> all;
  good &= quorum::wait(quorum::enqueue_allgather("consumer.gather", mine,
                                                 [&](const std::vector<int64_t>& shape) {
                                                   all.resize(static_cast<size_t>(shape[0]));
                                                   return static_cast<void*>(all.data());
                                                 }))
              .is_ok();
  good &= all == std::vector<double>(static_cast<size_t>(size), static_cast<double>(size));
  good &= quorum::shutdown().is_ok();
  std::printf("consumer (C++): rank %d of %d: %s\n", rank, size, good ? "ok" : "FAILED");
  return good ? 0 : 1;
}
