// Control-plane messages between a rank's engine and the coordinator on rank 0, and their wire
// encoding. Every frame is a 12-byte header (magic "QRM1", version, type, payload length)
// followed by the payload. Decoding is bounds-checked: truncated, oversized, unknown or
// garbage frames yield an error Status, never a crash or an over-read. Pure code.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "quorum/types.h"

namespace quorum::coord {

inline constexpr uint32_t kFrameMagic = 0x314d5251;  // "QRM1" little-endian
inline constexpr uint16_t kWireVersion = 4;
inline constexpr size_t kFrameHeaderBytes = 12;
inline constexpr uint32_t kMaxFramePayload = 16u << 20;  // 16 MiB
inline constexpr size_t kMaxNameBytes = 4096;
inline constexpr size_t kMaxRank = 1 << 20;
inline constexpr size_t kMaxDims = 32;
inline constexpr size_t kMaxTokenBytes = 256;
// The largest Hello payload (rank, size, token): all a peer may send before it is admitted.
inline constexpr uint32_t kMaxHelloPayload = 4 + 4 + 4 + kMaxTokenBytes;

enum class CollectiveKind : uint8_t { kAllreduce = 0, kBroadcast, kAllgather };
std::string_view kind_name(CollectiveKind k);

// What a rank asks for when it enqueues a tensor: the full description, sent the first time a
// name (or its signature) is seen. The coordinator compares these across ranks.
struct TensorRequest {
  std::string name;
  CollectiveKind kind = CollectiveKind::kAllreduce;
  ReduceOp op = ReduceOp::kSum;
  DataType dtype = DataType::kF32;
  Device::Kind device = Device::Kind::kHost;
  int32_t root = 0;
  std::vector<int64_t> shape;
  bool operator==(const TensorRequest&) const = default;
};

// One readiness entry: either a full request, or the coordinator-assigned id of a name whose
// signature the coordinator already holds for this rank (the steady-state fast path). dim0 is
// the first dimension, which for allgather may differ per rank and from round to round.
struct ReadyEntry {
  std::optional<TensorRequest> full;
  uint32_t id = 0;
  int64_t dim0 = 0;
  bool operator==(const ReadyEntry&) const = default;
};

struct Hello {
  int32_t rank = 0;
  int32_t size = 0;
  std::string token;
  bool operator==(const Hello&) const = default;
};
struct Welcome {
  int64_t coordinator_clock_ns = 0;
  bool operator==(const Welcome&) const = default;
};
struct Ready {
  std::vector<ReadyEntry> entries;
  // How many evicted ids (PlanBatch::evicted, counted over the connection's life) this rank has
  // forgotten when it sent this message; entries never name those ids.
  uint64_t evictions_seen = 0;
  // The latest schedule (Schedule::version) this rank had received. A Ready sent before the
  // rank saw the latest one names requests the rank then took onto it: the coordinator plans
  // none of its entries (it still learns their descriptions), and the rank announces again,
  // after it, whatever it does not run on the schedule.
  uint64_t schedule_seen = 0;
  bool operator==(const Ready&) const = default;
};

// kFold reduces every rank's carry of late gradients (see "Sync modes" in DESIGN.md) and hands
// the result to the flush callback; kFlushDone completes a flush() on every rank.
enum class PlanKind : uint8_t { kAllreduce = 0, kBroadcast, kAllgather, kError, kFold, kFlushDone };
inline constexpr int kNumPlanKinds = 6;

enum class SyncMode : uint8_t { kSync = 0, kBounded = 1 };

// One unit of collective work every rank executes in `seq` order.
struct Plan {
  uint64_t seq = 0;
  PlanKind kind = PlanKind::kAllreduce;
  ReduceOp op = ReduceOp::kSum;
  DataType dtype = DataType::kF32;
  Device::Kind device = Device::Kind::kHost;
  int32_t root = 0;
  std::vector<uint32_t> ids;             // tensors, in buffer order
  std::vector<int32_t> last_ranks;       // per id: the rank whose request completed its round
  std::vector<int64_t> dim0_per_rank;    // allgather only
  uint8_t algorithm = 0;                 // allreduce: an ops::Algorithm
  SyncMode mode = SyncMode::kSync;       // the job's mode when this plan was made
  std::string mode_reason;               // set on the first plan after a mode switch
  bool counted = false;                  // a count slot per tensor follows the data
  std::vector<std::vector<int32_t>> missing;  // per id (or empty): ranks standing in with zeros
  StatusCode code = StatusCode::kOk;     // error only
  std::string message;                   // error only
  bool operator==(const Plan&) const = default;
};

struct IdAssignment {
  uint32_t id = 0;
  std::string name;
  bool operator==(const IdAssignment&) const = default;
};

// Steady-state fast path (DESIGN.md, "The steady-state fast path"). Once the coordinator has
// validated a step's plan sequence repeating, it hands every rank that sequence: the entries are
// run in order, each after the ranks have agreed among themselves (a tiny allreduce) that its
// members are ready everywhere, without rank 0 in the loop.
struct ScheduleEntry {
  std::vector<uint32_t> ids;  // tensors, in buffer order
  ReduceOp op = ReduceOp::kSum;
  DataType dtype = DataType::kF32;
  Device::Kind device = Device::Kind::kHost;
  uint8_t algorithm = 0;  // an ops::Algorithm
  bool operator==(const ScheduleEntry&) const = default;
};
struct Schedule {
  uint64_t version = 0;
  bool reports = false;  // send FastReport (the auto policy needs arrival times)
  std::vector<ScheduleEntry> entries;
  // The entry due next: the coordinator may hand a schedule out between any two of its entries
  // (after a fallback mid-step, the step it learned starts where the fallback left it).
  uint32_t start = 0;
  bool operator==(const Schedule&) const = default;
};
struct PlanBatch {
  std::vector<IdAssignment> assignments;
  std::vector<Plan> plans;
  // Ids the coordinator no longer keeps (QUORUM_CACHE_CAPACITY): after running this batch's
  // plans a rank forgets them, and describes their names in full if they come back.
  std::vector<uint32_t> evicted;
  // Set on the batch that ends a step the coordinator has seen repeat: the ranks take it after
  // this batch's plans. Riding in the batch, it reaches every rank before that rank could
  // announce anything of the next step.
  std::optional<Schedule> schedule;
  bool operator==(const PlanBatch&) const = default;
};
struct Goodbye {
  bool operator==(const Goodbye&) const = default;
};
struct GoodbyeAck {
  bool operator==(const GoodbyeAck&) const = default;
};
// A rank called flush(): once every rank has, carries are folded (kFold plans) and kFlushDone.
struct Flush {
  bool operator==(const Flush&) const = default;
};
// Liveness, both ways, about once a second.
struct Heartbeat {
  bool operator==(const Heartbeat&) const = default;
};
// The coordinator declares a rank failed (vanished or silent past QUORUM_FAILURE_TIMEOUT_SEC):
// every engine abandons collectives in flight and fails what is pending.
struct PeerFailed {
  int32_t rank = 0;
  std::string reason;
  bool operator==(const PeerFailed&) const = default;
};

// Coordinator to every rank: schedule `version` ends; each rank leaves it at its next agreement.
struct FastAbort {
  uint64_t version = 0;
  std::string reason;
  bool operator==(const FastAbort&) const = default;
};
// A rank to the coordinator: it leaves (or never took) schedule `version`, and why.
struct FastExit {
  uint64_t version = 0;
  std::string reason;
  bool operator==(const FastExit&) const = default;
};
// One agreement that ran a step's first entry on the fast path: when it ended on the sending
// rank's clock, and how long that rank had waited in it for the others.
struct FastSample {
  int64_t end_ns = 0;
  int64_t wait_ns = 0;
  bool operator==(const FastSample&) const = default;
};
// A rank's arrival samples of fast steps `first`, `first + 1`, ... of a schedule, batched.
struct FastReport {
  uint64_t version = 0;
  uint64_t first = 0;
  std::vector<FastSample> samples;
  bool operator==(const FastReport&) const = default;
};

using Message = std::variant<Hello, Welcome, Ready, PlanBatch, Goodbye, GoodbyeAck, Flush,
                             Heartbeat, PeerFailed, FastAbort, FastExit, FastReport>;

// Appends one complete frame (header + payload) for `m` to `out`.
void encode(const Message& m, std::vector<uint8_t>& out);
std::vector<uint8_t> encode(const Message& m);

// Validates a 12-byte header; on success sets the payload length and message type.
Status decode_header(const uint8_t* header, uint32_t* payload_bytes, uint16_t* type);

// Decodes a payload of the given type. Rejects trailing bytes and out-of-range enum values.
Status decode_payload(uint16_t type, const uint8_t* payload, size_t size, Message* out);

// Decodes one whole frame (header + payload) occupying exactly `size` bytes.
Status decode_frame(const uint8_t* data, size_t size, Message* out);

}  // namespace quorum::coord
