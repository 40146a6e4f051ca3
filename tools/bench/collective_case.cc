#include "tools/bench/collective_case.h"

#include <algorithm>
#include <cstring>

#include "tests/common/test_data.h"

namespace quorum::bench {
namespace {

// Not a value the test_data rule produces in any dtype (f32 3.4e38, f16 NaN, u8 127, ...), so
// an output the collective failed to write cannot pass the check by chance.
constexpr unsigned char kPoison = 0x7f;
constexpr int kRoot = 0;

}  // namespace

std::string_view collective_name(Collective c) {
  switch (c) {
    case Collective::kAllreduce:
      return "allreduce";
    case Collective::kBroadcast:
      return "broadcast";
    case Collective::kAllgather:
      return "allgather";
  }
  return "?";
}

double bus_factor(Collective c, int ranks) {
  const double p = ranks;
  switch (c) {
    case Collective::kAllreduce:
      return 2.0 * (p - 1) / p;
    case Collective::kAllgather:
      return (p - 1) / p;
    case Collective::kBroadcast:
      return 1.0;
  }
  return 1.0;
}

CollectiveCase::CollectiveCase(Collective c, DataType t, size_t bytes, uint64_t seed, int rank,
                               int ranks, const MpiTypes& mpi)
    : collective_(c), type_(t), rank_(rank), mpi_(mpi) {
  const size_t elements = std::max<size_t>(1, bytes / dtype_size(t));
  name_ = "bench." + std::string(collective_name(c)) + "." + std::string(dtype_name(t)) + "." +
          std::to_string(elements);
  switch (c) {
    case Collective::kAllreduce:
      count_ = own_count_ = elements;
      input_ = testing::make_input(seed, rank, count_, t);
      expected_ = testing::expected_allreduce(seed, ranks, count_, t, ReduceOp::kSum);
      break;
    case Collective::kBroadcast:
      count_ = own_count_ = elements;
      input_ = testing::make_input(seed, kRoot, count_, t);
      break;
    case Collective::kAllgather: {
      own_count_ = std::max<size_t>(1, elements / static_cast<size_t>(ranks));
      count_ = own_count_ * static_cast<size_t>(ranks);
      input_ = testing::make_input(seed, rank, own_count_, t);
      const size_t own_bytes = own_count_ * dtype_size(t);
      expected_.resize(count_ * dtype_size(t));
      for (int r = 0; r < ranks; ++r) {
        const auto part = r == rank ? input_ : testing::make_input(seed, r, own_count_, t);
        std::memcpy(expected_.data() + static_cast<size_t>(r) * own_bytes, part.data(), own_bytes);
      }
      break;
    }
  }
  output_.resize(count_ * dtype_size(t));
}

void CollectiveCase::prepare_quorum() {
  if (collective_ == Collective::kAllgather) {
    std::memset(output_.data(), kPoison, output_.size());  // quorum gathers from input_
    return;
  }
  prepare_mpi();
}

void CollectiveCase::prepare_mpi() {
  const size_t own_bytes = own_count_ * dtype_size(type_);
  switch (collective_) {
    case Collective::kAllreduce:
      std::memcpy(output_.data(), input_.data(), own_bytes);
      break;
    case Collective::kBroadcast:
      if (rank_ == kRoot) {
        std::memcpy(output_.data(), input_.data(), own_bytes);
      } else {
        std::memset(output_.data(), kPoison, output_.size());
      }
      break;
    case Collective::kAllgather:  // MPI_IN_PLACE: this rank's part already in the output
      std::memset(output_.data(), kPoison, output_.size());
      std::memcpy(output_.data() + static_cast<size_t>(rank_) * own_bytes, input_.data(),
                  own_bytes);
      break;
  }
}

Status CollectiveCase::run_quorum() {
  const auto n = static_cast<int64_t>(count_);
  switch (collective_) {
    case Collective::kAllreduce: {
      const Tensor t{output_.data(), type_, {n}, Device::host()};
      return quorum::allreduce(name_, t, t, ReduceOp::kSum);  // blocking, as MPI_Allreduce
    }
    case Collective::kBroadcast: {
      const Tensor t{output_.data(), type_, {n}, Device::host()};
      return quorum::wait(quorum::enqueue_broadcast(name_, t, kRoot));
    }
    case Collective::kAllgather: {
      const Tensor in{input_.data(), type_, {static_cast<int64_t>(own_count_)}, Device::host()};
      auto allocate = [this](const std::vector<int64_t>& shape) -> void* {
        const bool fits = shape.size() == 1 && shape[0] == static_cast<int64_t>(count_);
        return fits ? output_.data() : nullptr;
      };
      return quorum::wait(quorum::enqueue_allgather(name_, in, allocate));
    }
  }
  return Status(StatusCode::kInternal, "unknown collective");
}

void CollectiveCase::run_mpi() {
  const MPI_Datatype type = mpi_.datatype(type_);
  switch (collective_) {
    case Collective::kAllreduce:
      MPI_Allreduce(MPI_IN_PLACE, output_.data(), static_cast<int>(count_), type, mpi_.sum(type_),
                    MPI_COMM_WORLD);
      break;
    case Collective::kBroadcast:
      MPI_Bcast(output_.data(), static_cast<int>(count_), type, kRoot, MPI_COMM_WORLD);
      break;
    case Collective::kAllgather:
      MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, output_.data(),
                    static_cast<int>(own_count_), type, MPI_COMM_WORLD);
      break;
  }
}

std::optional<Mismatch> CollectiveCase::check() const {
  const auto& want = collective_ == Collective::kBroadcast ? input_ : expected_;
  return first_mismatch(output_.data(), want.data(), count_, type_);
}

}  // namespace quorum::bench
