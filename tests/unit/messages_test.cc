// Control-message encoding: every message type survives encode/decode_frame field by field, and
// every malformed frame (truncated, bad header, trailing bytes, out-of-range enums, oversized
// fields, random bytes) is rejected with a non-OK Status rather than a crash or an over-read.
#include "coordinator/messages.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "coordinator/wire.h"

namespace quorum::coord {
namespace {

// Encodes `m`, decodes the frame and returns the decoded message of the same alternative.
template <typename T>
T round_trip(const T& m) {
  std::vector<uint8_t> frame = encode(Message{m});
  Message out;
  Status s = decode_frame(frame.data(), frame.size(), &out);
  EXPECT_TRUE(s.is_ok()) << s.message();
  EXPECT_TRUE(std::holds_alternative<T>(out));
  return std::holds_alternative<T>(out) ? std::get<T>(out) : T{};
}

// A frame with a hand-written header around `payload`.
std::vector<uint8_t> frame_of(uint16_t type, const std::vector<uint8_t>& payload,
                              uint32_t magic = kFrameMagic, uint16_t version = kWireVersion) {
  Writer w;
  w.u32(magic);
  w.u16(version);
  w.u16(type);
  w.u32(static_cast<uint32_t>(payload.size()));
  w.raw(payload.data(), payload.size());
  return w.bytes();
}

Status decode(const std::vector<uint8_t>& frame) {
  Message out;
  return decode_frame(frame.data(), frame.size(), &out);
}

TensorRequest sample_request() {
  return {"layer3.conv.weight", CollectiveKind::kBroadcast, ReduceOp::kMax,
          DataType::kBF16,      Device::Kind::kCuda,        3,
          {64, 3, 7, 7}};
}

Plan plan(uint64_t seq, PlanKind kind, DataType dtype, std::vector<uint32_t> ids) {
  Plan p;
  p.seq = seq;
  p.kind = kind;
  p.dtype = dtype;
  p.ids = std::move(ids);
  return p;
}

PlanBatch sample_batch() {
  PlanBatch b;
  b.assignments = {{0, "a"}, {1, "fc.weight"}, {4000000000u, std::string(300, 'n')}};
  Plan ar = plan(7, PlanKind::kAllreduce, DataType::kI64, {0, 1, 2});
  ar.op = ReduceOp::kProduct;
  ar.last_ranks = {3, 0, 1};
  ar.mode = SyncMode::kBounded;
  ar.mode_reason = "waiting 23% of step time";
  ar.counted = true;
  ar.missing = {{}, {2, 3}, {}};
  Plan bc = plan(8, PlanKind::kBroadcast, DataType::kU8, {5});
  bc.device = Device::Kind::kCuda;
  bc.root = 2;
  Plan ag = plan(9, PlanKind::kAllgather, DataType::kF16, {6});
  ag.dim0_per_rank = {3, 0, 5, 1ll << 40};
  Plan err = plan(~0ull, PlanKind::kError, DataType::kF32, {1});
  err.code = StatusCode::kMismatch;
  err.message = "tensor 'fc.weight': shape [10,5] on rank 0";
  b.plans = {ar, bc, ag, err};
  b.evicted = {3, 0, UINT32_MAX};
  return b;
}

Schedule sample_schedule() {
  Schedule s;
  s.version = 7;
  s.reports = true;
  s.entries.push_back({{0, 3, 9}, ReduceOp::kAverage, DataType::kBF16, Device::Kind::kCuda, 2});
  s.entries.push_back({{1}, ReduceOp::kSum, DataType::kF64, Device::Kind::kHost, 0});
  s.start = 1;
  return s;
}

std::vector<std::vector<uint8_t>> valid_frames() {
  Ready ready;
  ready.entries.push_back({sample_request(), 0, 64});
  ready.entries.push_back({std::nullopt, 12, -1});
  return {encode(Hello{2, 4, "job-token"}),
          encode(Welcome{123456789012345}),
          encode(ready),
          encode(sample_batch()),
          encode(Goodbye{}),
          encode(GoodbyeAck{}),
          encode(Flush{}),
          encode([] {
            PlanBatch b = sample_batch();
            b.schedule = sample_schedule();
            return b;
          }()),
          encode(FastAbort{7, "rank 1: tensor 'x' is not in the schedule"}),
          encode(FastExit{7, "quorum is shutting down"}),
          encode(FastReport{7, 16, {{1000, 20}, {-5, 0}}})};
}

TEST(MessagesRoundTrip, Hello) {
  Hello h = round_trip(Hello{-7, 1 << 20, std::string(256, 't')});
  EXPECT_EQ(h.rank, -7);
  EXPECT_EQ(h.size, 1 << 20);
  EXPECT_EQ(h.token, std::string(256, 't'));
}

TEST(MessagesRoundTrip, Welcome) {
  EXPECT_EQ(round_trip(Welcome{-42}).coordinator_clock_ns, -42);
  EXPECT_EQ(round_trip(Welcome{INT64_MAX}).coordinator_clock_ns, INT64_MAX);
}

TEST(MessagesRoundTrip, ReadyWithFullAndIdOnlyEntries) {
  Ready in;
  in.entries.push_back({sample_request(), 0, 64});
  in.entries.push_back({std::nullopt, 12, -1});
  TensorRequest scalar{
      "", CollectiveKind::kAllgather, ReduceOp::kAverage, DataType::kU8, Device::Kind::kHost, -1,
      {}};
  in.entries.push_back({scalar, 0, 0});
  in.entries.push_back({std::nullopt, UINT32_MAX, INT64_MIN});
  in.evictions_seen = (1ull << 40) + 3;
  in.schedule_seen = (1ull << 33) + 5;
  Ready out = round_trip(in);
  EXPECT_EQ(out.evictions_seen, in.evictions_seen);
  EXPECT_EQ(out.schedule_seen, in.schedule_seen);
  ASSERT_EQ(out.entries.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(out.entries[i].full.has_value(), in.entries[i].full.has_value());
    if (in.entries[i].full) {
      EXPECT_EQ(*out.entries[i].full, *in.entries[i].full);
    } else {
      EXPECT_EQ(out.entries[i].id, in.entries[i].id);
    }
    EXPECT_EQ(out.entries[i].dim0, in.entries[i].dim0);
  }
  EXPECT_TRUE(round_trip(Ready{}).entries.empty());
}

TEST(MessagesRoundTrip, PlanBatchWithEveryPlanKind) {
  PlanBatch in = sample_batch();
  PlanBatch out = round_trip(in);
  EXPECT_EQ(out.assignments, in.assignments);
  ASSERT_EQ(out.plans.size(), in.plans.size());
  for (size_t i = 0; i < in.plans.size(); ++i) {
    SCOPED_TRACE(i);
    const Plan& a = in.plans[i];
    const Plan& b = out.plans[i];
    EXPECT_EQ(b.seq, a.seq);
    EXPECT_EQ(b.kind, a.kind);
    EXPECT_EQ(b.op, a.op);
    EXPECT_EQ(b.dtype, a.dtype);
    EXPECT_EQ(b.device, a.device);
    EXPECT_EQ(b.root, a.root);
    EXPECT_EQ(b.ids, a.ids);
    EXPECT_EQ(b.dim0_per_rank, a.dim0_per_rank);
    EXPECT_EQ(b.code, a.code);
    EXPECT_EQ(b.message, a.message);
  }
  EXPECT_EQ(out.plans[2].dim0_per_rank, (std::vector<int64_t>{3, 0, 5, 1ll << 40}));
  EXPECT_EQ(out.plans[3].code, StatusCode::kMismatch);
  EXPECT_EQ(out.evicted, in.evicted);
}

TEST(MessagesRoundTrip, EmptyMessagesAndAppendingEncode) {
  round_trip(Goodbye{});
  round_trip(GoodbyeAck{});
  round_trip(Flush{});
  round_trip(Heartbeat{});
  PeerFailed pf = round_trip(PeerFailed{3, "no heartbeat for 30 s"});
  EXPECT_EQ(3, pf.rank);
  EXPECT_EQ("no heartbeat for 30 s", pf.reason);
  std::vector<uint8_t> two = encode(Goodbye{});
  encode(GoodbyeAck{}, two);  // appends a second frame
  ASSERT_EQ(two.size(), 2 * kFrameHeaderBytes);
  uint32_t len = 1;
  uint16_t type = 0;
  ASSERT_TRUE(decode_header(two.data() + kFrameHeaderBytes, &len, &type).is_ok());
  EXPECT_EQ(len, 0u);
  EXPECT_EQ(type, 5);  // GoodbyeAck's index in Message
}

TEST(MessagesRoundTrip, FastPathMessages) {
  PlanBatch with = sample_batch();
  with.schedule = sample_schedule();
  EXPECT_EQ(round_trip(with), with);
  with.schedule = Schedule{};
  EXPECT_EQ(round_trip(with), with);
  FastAbort a = round_trip(FastAbort{1ull << 40, "the sync policy switched to bounded"});
  EXPECT_EQ(a.version, 1ull << 40);
  EXPECT_EQ(a.reason, "the sync policy switched to bounded");
  EXPECT_EQ(round_trip(FastExit{3, "refused"}), (FastExit{3, "refused"}));
  FastReport r{9, 100, {{123456789, 42}, {0, -1}}};
  EXPECT_EQ(round_trip(r), r);
}

TEST(MessagesReject, ScheduleWithBadEnumsOrAlgorithm) {
  PlanBatch batch;  // the schedule is the batch's last field
  batch.schedule = sample_schedule();
  std::vector<uint8_t> good = encode(batch);
  EXPECT_TRUE(decode(good).is_ok());
  // The last entry's four trailing bytes are op, dtype, device, algorithm; then the start.
  const size_t op = good.size() - 4 - 4;
  for (auto [offset, value] : std::vector<std::pair<size_t, uint8_t>>{
           {op, 5}, {op + 1, 7}, {op + 2, 2}, {op + 3, 4}}) {
    std::vector<uint8_t> bad = good;
    bad[offset] = value;
    EXPECT_FALSE(decode(bad).is_ok()) << "byte " << offset << " = " << int(value);
  }
  std::vector<uint8_t> past = good;  // start 2 of 2 entries
  past[good.size() - 4] = 2;
  Status s = decode(past);
  EXPECT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("schedule start 2 past its 2 entries"), std::string::npos)
      << s.message();
  // An empty batch: three zero counts, then the schedule flag, the version, the reports flag.
  const size_t has_schedule = kFrameHeaderBytes + 12;
  for (size_t offset : {has_schedule, has_schedule + 1 + 8}) {
    std::vector<uint8_t> flag = good;
    flag[offset] = 2;
    EXPECT_FALSE(decode(flag).is_ok()) << "flag at " << offset;
  }
}

TEST(MessagesReject, EveryTruncatedFrameAndPayload) {
  for (const auto& frame : valid_frames()) {
    for (size_t n = 0; n < frame.size(); ++n) {
      Message out;
      EXPECT_FALSE(decode_frame(frame.data(), n, &out).is_ok()) << "prefix " << n;
    }
    // The payload parser itself must notice truncation, independent of the header's length.
    uint16_t type = frame[6];
    for (size_t n = kFrameHeaderBytes; n + 1 < frame.size(); ++n) {
      Message out;
      std::vector<uint8_t> prefix(frame.begin() + kFrameHeaderBytes, frame.begin() + n);
      EXPECT_FALSE(decode_payload(type, prefix.data(), prefix.size(), &out).is_ok())
          << "type " << type << " payload prefix " << prefix.size();
    }
  }
}

TEST(MessagesReject, BadHeaders) {
  std::vector<uint8_t> ok = encode(Hello{0, 1, "x"});
  ASSERT_TRUE(decode(ok).is_ok());
  auto bad = ok;
  bad[0] ^= 0xff;
  Status s = decode(bad);
  EXPECT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("magic"), std::string::npos) << s.message();
  for (uint16_t version : {uint16_t{0}, uint16_t(kWireVersion - 1), uint16_t(kWireVersion + 1),
                           uint16_t{0xffff}}) {
    s = decode(frame_of(0, {0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0}, kFrameMagic, version));
    EXPECT_FALSE(s.is_ok());
    EXPECT_NE(s.message().find("version"), std::string::npos) << s.message();
  }
  for (uint16_t type : {9, 100, 0xffff}) {
    EXPECT_FALSE(decode(frame_of(type, {})).is_ok()) << type;
    Message out;
    EXPECT_FALSE(decode_payload(type, nullptr, 0, &out).is_ok()) << type;
  }
}

TEST(MessagesReject, PayloadLengthAboveLimit) {
  uint32_t len = 0;
  uint16_t type = 0;
  auto header = frame_of(4, {});
  for (uint32_t announced : {kMaxFramePayload + 1, 0xffffffffu}) {
    for (int i = 0; i < 4; ++i) header[8 + i] = static_cast<uint8_t>(announced >> (8 * i));
    Status s = decode_header(header.data(), &len, &type);
    EXPECT_FALSE(s.is_ok());
    EXPECT_NE(s.message().find("limit"), std::string::npos) << s.message();
    EXPECT_FALSE(decode(header).is_ok());
  }
  for (int i = 0; i < 4; ++i) header[8 + i] = static_cast<uint8_t>(kMaxFramePayload >> (8 * i));
  EXPECT_TRUE(decode_header(header.data(), &len, &type).is_ok());
  EXPECT_EQ(len, kMaxFramePayload);
  EXPECT_FALSE(decode(header).is_ok());  // announces 16 MiB, carries none
}

TEST(MessagesReject, TrailingBytes) {
  for (auto frame : valid_frames()) {
    uint16_t type = frame[6];
    std::vector<uint8_t> payload(frame.begin() + kFrameHeaderBytes, frame.end());
    payload.push_back(0);
    Status s = decode(frame_of(type, payload));
    EXPECT_FALSE(s.is_ok()) << "type " << type;
    EXPECT_NE(s.message().find("trailing"), std::string::npos) << s.message();
    frame.push_back(0);  // a byte beyond the announced length
    EXPECT_FALSE(decode(frame).is_ok()) << "type " << type;
  }
}

std::vector<uint8_t> ready_payload(uint8_t form, uint8_t kind, uint8_t op, uint8_t dtype,
                                   uint8_t device, uint32_t dims = 1, uint32_t name_len = 1) {
  Writer w;
  w.u32(1);
  w.u8(form);
  w.u32(name_len);
  size_t name_bytes = name_len <= kMaxNameBytes + 1 ? name_len : 0;  // huge: announce only
  w.raw(std::string(name_bytes, 'n').data(), name_bytes);
  for (uint8_t b : {kind, op, dtype, device}) w.u8(b);
  w.i32(0);
  w.u32(dims);
  for (uint32_t i = 0; i < dims && i < 64; ++i) w.i64(4);
  w.i64(4);  // dim0
  w.u64(0);  // evictions seen
  w.u64(0);  // schedule seen
  return w.bytes();
}

std::vector<uint8_t> plan_payload(uint8_t kind, uint8_t op, uint8_t dtype, uint8_t device,
                                  uint8_t code, uint32_t message_len = 3, uint32_t dims = 0) {
  Writer w;
  w.u32(0);  // assignments
  w.u32(1);  // plans
  w.u64(0);
  for (uint8_t b : {kind, op, dtype, device}) w.u8(b);
  w.i32(0);
  w.u32(1);
  w.u32(0);     // ids
  w.u32(1);
  w.i32(0);     // last_ranks
  w.u32(dims);  // dim0_per_rank
  for (uint32_t i = 0; i < dims; ++i) w.i64(1);
  w.u8(code);
  w.u8(0);  // algorithm
  w.u8(0);  // mode
  w.u32(0);  // mode reason
  w.u8(0);  // counted
  w.u32(0);  // missing
  w.u32(message_len);
  w.raw(std::string(message_len, 'm').data(), message_len);
  w.u32(0);  // evicted
  w.u8(0);   // no schedule
  return w.bytes();
}

TEST(MessagesReject, OutOfRangeEnums) {
  // The hand-built layouts are right: in-range values at the limits decode.
  EXPECT_TRUE(decode(frame_of(2, ready_payload(1, 2, 4, 6, 1))).is_ok());
  EXPECT_TRUE(decode(frame_of(3, plan_payload(3, 4, 6, 1, 6))).is_ok());
  EXPECT_FALSE(decode(frame_of(2, ready_payload(2, 0, 0, 0, 0))).is_ok()) << "entry form";
  EXPECT_FALSE(decode(frame_of(2, ready_payload(1, 3, 0, 0, 0))).is_ok()) << "collective kind";
  EXPECT_FALSE(decode(frame_of(2, ready_payload(1, 0, 5, 0, 0))).is_ok()) << "reduce op";
  EXPECT_FALSE(decode(frame_of(2, ready_payload(1, 0, 0, 7, 0))).is_ok()) << "dtype";
  EXPECT_FALSE(decode(frame_of(2, ready_payload(1, 0, 0, 255, 0))).is_ok()) << "dtype";
  EXPECT_FALSE(decode(frame_of(2, ready_payload(1, 0, 0, 0, 2))).is_ok()) << "device";
  EXPECT_FALSE(decode(frame_of(3, plan_payload(6, 0, 0, 0, 0))).is_ok()) << "plan kind";
  EXPECT_FALSE(decode(frame_of(3, plan_payload(0, 5, 0, 0, 0))).is_ok()) << "reduce op";
  EXPECT_FALSE(decode(frame_of(3, plan_payload(0, 0, 7, 0, 0))).is_ok()) << "dtype";
  EXPECT_FALSE(decode(frame_of(3, plan_payload(0, 0, 0, 2, 0))).is_ok()) << "device";
  EXPECT_FALSE(decode(frame_of(3, plan_payload(0, 0, 0, 0, 7))).is_ok()) << "status code";
}

TEST(MessagesReject, OversizedStringsAndCounts) {
  EXPECT_TRUE(decode(encode(Hello{0, 1, std::string(256, 't')})).is_ok());
  EXPECT_FALSE(decode(encode(Hello{0, 1, std::string(257, 't')})).is_ok()) << "token";
  Ready r;
  TensorRequest long_name;
  long_name.name = std::string(kMaxNameBytes, 'n');
  r.entries.push_back({long_name, 0, 1});
  EXPECT_TRUE(decode(encode(r)).is_ok());
  r.entries[0].full->name += "n";
  EXPECT_FALSE(decode(encode(r)).is_ok()) << "tensor name";
  PlanBatch b;
  b.assignments = {{0, std::string(kMaxNameBytes + 1, 'n')}};
  EXPECT_FALSE(decode(encode(b)).is_ok()) << "assignment name";
  EXPECT_TRUE(decode(frame_of(3, plan_payload(3, 0, 0, 0, 2, 1u << 16))).is_ok());
  EXPECT_FALSE(decode(frame_of(3, plan_payload(3, 0, 0, 0, 2, (1u << 16) + 1))).is_ok())
      << "error message";
  EXPECT_TRUE(decode(frame_of(2, ready_payload(1, 0, 0, 0, 0, kMaxDims))).is_ok());
  EXPECT_FALSE(decode(frame_of(2, ready_payload(1, 0, 0, 0, 0, kMaxDims + 1))).is_ok()) << "dims";
  EXPECT_FALSE(decode(frame_of(2, ready_payload(1, 0, 0, 0, 0, 0xffffffffu))).is_ok()) << "dims";
  // A string length that runs past the frame.
  EXPECT_FALSE(decode(frame_of(2, ready_payload(1, 0, 0, 0, 0, 1, 0xffffffffu))).is_ok());
  // Item counts far larger than the bytes that follow.
  for (uint16_t type : {2, 3}) {
    Writer w;
    w.u32(0xffffffffu);
    w.u32(0);
    EXPECT_FALSE(decode(frame_of(type, w.bytes())).is_ok()) << "count, type " << type;
  }
  const auto max_rank = static_cast<uint32_t>(kMaxRank);
  EXPECT_TRUE(decode(frame_of(3, plan_payload(2, 0, 0, 0, 0, 0, max_rank))).is_ok());
  EXPECT_FALSE(decode(frame_of(3, plan_payload(2, 0, 0, 0, 0, 0, max_rank + 1))).is_ok())
      << "dim0_per_rank count";
}

// Decode must give an error or a valid message; a valid one re-encodes to the same bytes.
void expect_safe(const std::vector<uint8_t>& buf) {
  Message out;
  Status s = decode_frame(buf.data(), buf.size(), &out);
  if (s.is_ok()) {
    EXPECT_EQ(encode(out), buf);
  } else {
    EXPECT_FALSE(s.message().empty());
  }
}

TEST(MessagesFuzz, RandomBuffersNeverCrash) {
  std::mt19937_64 rng(20240611);
  int accepted = 0;
  for (int iter = 0; iter < 4000; ++iter) {
    std::vector<uint8_t> buf(rng() % 160);
    for (auto& b : buf) b = static_cast<uint8_t>(rng());
    if (iter % 2 == 0) {  // a valid header over a random payload, often a short one
      std::vector<uint8_t> payload(iter % 8 == 0 ? rng() % 9 : rng() % 150);
      for (auto& b : payload) b = static_cast<uint8_t>(rng());
      if (iter % 4 == 2 && payload.size() >= 4) {  // a small leading count
        payload[0] %= 3;
        payload[1] = payload[2] = payload[3] = 0;
      }
      buf = frame_of(static_cast<uint16_t>(rng() % 7), payload);
    }
    Message out;
    if (decode_frame(buf.data(), buf.size(), &out).is_ok()) ++accepted;
    expect_safe(buf);
  }
  EXPECT_GT(accepted, 0);  // some random frames (Goodbye, Welcome, ...) are valid
}

TEST(MessagesFuzz, MutatedValidFramesNeverCrash) {
  std::mt19937_64 rng(7);
  auto frames = valid_frames();
  for (int iter = 0; iter < 4000; ++iter) {
    auto buf = frames[iter % frames.size()];
    int flips = 1 + static_cast<int>(rng() % 3);
    for (int f = 0; f < flips; ++f) {
      // Keep the header intact half the time so the payload parser is exercised.
      size_t lo = iter % 2 ? 0 : kFrameHeaderBytes;
      if (buf.size() > lo) buf[lo + rng() % (buf.size() - lo)] = static_cast<uint8_t>(rng());
    }
    expect_safe(buf);
  }
}

}  // namespace
}  // namespace quorum::coord
