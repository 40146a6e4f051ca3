// Writes one seed frame per message shape into the directory given as argv[1], using the real
// encoder, for the fuzz_messages corpus (tests/fuzz/corpus/messages). Not part of any test run.
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "coordinator/messages.h"

using namespace quorum;
using namespace quorum::coord;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  TensorRequest req{"layer3.conv.weight", CollectiveKind::kAllreduce, ReduceOp::kAverage,
                    DataType::kF32,       Device::Kind::kHost,        0,
                    {64, 3, 7, 7}};
  TensorRequest bcast{
      "embed", CollectiveKind::kBroadcast, ReduceOp::kSum, DataType::kBF16, Device::Kind::kCuda, 3,
      {}};
  Ready ready;
  ready.entries.push_back({req, 0, 64});
  ready.entries.push_back({std::nullopt, 7, 0});
  ready.entries.push_back({bcast, 0, 0});
  Ready ids_only;
  for (uint32_t i = 0; i < 5; ++i) ids_only.entries.push_back({std::nullopt, i, 0});

  Plan allreduce;
  allreduce.seq = 42;
  allreduce.dtype = DataType::kF16;
  allreduce.ids = {0, 1, 2};
  allreduce.last_ranks = {3, 1, 0};
  allreduce.algorithm = 2;
  Plan gather;
  gather.seq = 43;
  gather.kind = PlanKind::kAllgather;
  gather.dtype = DataType::kI64;
  gather.ids = {9};
  gather.last_ranks = {2};
  gather.dim0_per_rank = {1, 0, 5, 2};
  Plan error;
  error.seq = 44;
  error.kind = PlanKind::kError;
  error.ids = {4};
  error.code = StatusCode::kInvalidArgument;
  error.message = "tensor 'fc.weight': shape [10,5] on ranks 0,2 but [10,6] on rank 1";
  Plan bounded;  // a bounded-mode plan: counted, with ranks standing in with zeros
  bounded.seq = 45;
  bounded.op = ReduceOp::kAverage;
  bounded.ids = {0, 7};
  bounded.last_ranks = {1, 2};
  bounded.mode = SyncMode::kBounded;
  bounded.mode_reason = "waiting for stragglers is 12.5% of step time";
  bounded.counted = true;
  bounded.missing = {{3}, {}};
  Plan fold;
  fold.seq = 46;
  fold.kind = PlanKind::kFold;
  fold.ids = {0};
  fold.last_ranks = {0};
  PlanBatch batch{{{0, "layer3.conv.weight"}, {7, "fc.bias"}},
                  {allreduce, gather, error, bounded, fold}};
  PlanBatch evicting{{}, {}, {3, 9, 12}};
  ids_only.evictions_seen = 3;

  const std::vector<std::pair<std::string, Message>> seeds = {
      {"hello", Hello{2, 4, "0123456789abcdef0123456789abcdef"}},
      {"welcome", Welcome{1234567890123}},
      {"ready_full", ready},
      {"ready_ids", ids_only},
      {"plan_batch", batch},
      {"plan_batch_empty", PlanBatch{}},
      {"plan_batch_evicting", evicting},
      {"goodbye", Goodbye{}},
      {"goodbye_ack", GoodbyeAck{}},
      {"flush", Flush{}},
      {"heartbeat", Heartbeat{}},
      {"peer_failed", PeerFailed{2, "rank 2 failed (silent for 30 s)"}},
  };
  for (const auto& [name, m] : seeds) {
    std::vector<uint8_t> frame = encode(m);
    std::ofstream out(std::string(argv[1]) + "/" + name + ".bin", std::ios::binary);
    out.write(reinterpret_cast<const char*>(frame.data()),
              static_cast<std::streamsize>(frame.size()));
    if (!out) {
      std::fprintf(stderr, "cannot write %s\n", name.c_str());
      return 1;
    }
  }
  std::printf("wrote %zu seed frames to %s\n", seeds.size(), argv[1]);
  return 0;
}
