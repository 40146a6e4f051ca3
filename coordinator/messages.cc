#include "coordinator/messages.h"

#include "coordinator/wire.h"
#include "ops/backend.h"

namespace quorum::coord {
namespace {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
// Explicit guide: clang before 17 has no aggregate CTAD (the fuzz build uses clang 14).
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

void put_request(Writer& w, const TensorRequest& r) {
  w.str(r.name);
  w.u8(static_cast<uint8_t>(r.kind));
  w.u8(static_cast<uint8_t>(r.op));
  w.u8(static_cast<uint8_t>(r.dtype));
  w.u8(static_cast<uint8_t>(r.device));
  w.i32(r.root);
  w.u32(static_cast<uint32_t>(r.shape.size()));
  for (int64_t d : r.shape) w.i64(d);
}

// Reads an enum stored as u8 and rejects values at or past `limit`.
template <typename E>
E get_enum(Reader& r, int limit, const char* what) {
  uint8_t v = r.u8();
  if (r.ok() && v >= limit) r.fail(std::string("invalid ") + what + " value " + std::to_string(v));
  return static_cast<E>(v);
}

TensorRequest get_request(Reader& r) {
  TensorRequest t;
  t.name = r.str(kMaxNameBytes);
  t.kind = get_enum<CollectiveKind>(r, 3, "collective kind");
  t.op = get_enum<ReduceOp>(r, kNumReduceOps, "reduce op");
  t.dtype = get_enum<DataType>(r, kNumDataTypes, "dtype");
  t.device = get_enum<Device::Kind>(r, 2, "device kind");
  t.root = r.i32();
  uint32_t dims = r.count(kMaxDims, 8);
  t.shape.resize(dims);
  for (auto& d : t.shape) d = r.i64();
  return t;
}

void put_schedule(Writer& w, const Schedule& x) {
  w.u64(x.version);
  w.u8(x.reports ? 1 : 0);
  w.u32(static_cast<uint32_t>(x.entries.size()));
  for (const auto& e : x.entries) {
    w.u32(static_cast<uint32_t>(e.ids.size()));
    for (uint32_t id : e.ids) w.u32(id);
    w.u8(static_cast<uint8_t>(e.op));
    w.u8(static_cast<uint8_t>(e.dtype));
    w.u8(static_cast<uint8_t>(e.device));
    w.u8(e.algorithm);
  }
  w.u32(x.start);
}

Schedule get_schedule(Reader& r) {
  Schedule x;
  x.version = r.u64();
  uint8_t reports = r.u8();
  if (r.ok() && reports > 1) r.fail("invalid reports flag");
  x.reports = reports == 1;
  x.entries.resize(r.count(1u << 20, 4 + 4));
  for (auto& e : x.entries) {
    e.ids.resize(r.count(1u << 20, 4));
    for (auto& id : e.ids) id = r.u32();
    e.op = get_enum<ReduceOp>(r, kNumReduceOps, "reduce op");
    e.dtype = get_enum<DataType>(r, kNumDataTypes, "dtype");
    e.device = get_enum<Device::Kind>(r, 2, "device kind");
    e.algorithm = r.u8();
    if (r.ok() && e.algorithm >= ops::kNumAlgorithms) {
      r.fail("invalid algorithm " + std::to_string(e.algorithm));
    }
  }
  x.start = r.u32();
  if (r.ok() && x.start > 0 && x.start >= x.entries.size()) {
    r.fail("schedule start " + std::to_string(x.start) + " past its " +
           std::to_string(x.entries.size()) + " entries");
  }
  return x;
}

// FastAbort and FastExit: a schedule version and why.
template <typename T>
void put_versioned(Writer& w, const T& x) {
  w.u64(x.version);
  w.str(x.reason);
}

template <typename T>
T get_versioned(Reader& r) {
  T x;
  x.version = r.u64();
  x.reason = r.str(4096);
  return x;
}

void put_payload(Writer& w, const Message& m) {
  std::visit(
      Overloaded{
          [&](const Hello& h) {
            w.i32(h.rank);
            w.i32(h.size);
            w.str(h.token);
          },
          [&](const Welcome& x) { w.i64(x.coordinator_clock_ns); },
          [&](const Ready& x) {
            w.u32(static_cast<uint32_t>(x.entries.size()));
            for (const auto& e : x.entries) {
              w.u8(e.full ? 1 : 0);
              if (e.full) {
                put_request(w, *e.full);
              } else {
                w.u32(e.id);
              }
              w.i64(e.dim0);
            }
            w.u64(x.evictions_seen);
            w.u64(x.schedule_seen);
          },
          [&](const PlanBatch& x) {
            w.u32(static_cast<uint32_t>(x.assignments.size()));
            for (const auto& a : x.assignments) {
              w.u32(a.id);
              w.str(a.name);
            }
            w.u32(static_cast<uint32_t>(x.plans.size()));
            for (const auto& p : x.plans) {
              w.u64(p.seq);
              w.u8(static_cast<uint8_t>(p.kind));
              w.u8(static_cast<uint8_t>(p.op));
              w.u8(static_cast<uint8_t>(p.dtype));
              w.u8(static_cast<uint8_t>(p.device));
              w.i32(p.root);
              w.u32(static_cast<uint32_t>(p.ids.size()));
              for (uint32_t id : p.ids) w.u32(id);
              w.u32(static_cast<uint32_t>(p.last_ranks.size()));
              for (int32_t r : p.last_ranks) w.i32(r);
              w.u32(static_cast<uint32_t>(p.dim0_per_rank.size()));
              for (int64_t d : p.dim0_per_rank) w.i64(d);
              w.u8(static_cast<uint8_t>(p.code));
              w.u8(p.algorithm);
              w.u8(static_cast<uint8_t>(p.mode));
              w.str(p.mode_reason);
              w.u8(p.counted ? 1 : 0);
              w.u32(static_cast<uint32_t>(p.missing.size()));
              for (const auto& m : p.missing) {
                w.u32(static_cast<uint32_t>(m.size()));
                for (int32_t r : m) w.i32(r);
              }
              w.str(p.message);
            }
            w.u32(static_cast<uint32_t>(x.evicted.size()));
            for (uint32_t id : x.evicted) w.u32(id);
            w.u8(x.schedule ? 1 : 0);
            if (x.schedule) put_schedule(w, *x.schedule);
          },
          [&](const Goodbye&) {},
          [&](const GoodbyeAck&) {},
          [&](const Flush&) {},
          [&](const Heartbeat&) {},
          [&](const PeerFailed& x) {
            w.i32(x.rank);
            w.str(x.reason);
          },
          [&](const FastAbort& x) { put_versioned(w, x); },
          [&](const FastExit& x) { put_versioned(w, x); },
          [&](const FastReport& x) {
            w.u64(x.version);
            w.u64(x.first);
            w.u32(static_cast<uint32_t>(x.samples.size()));
            for (const auto& s : x.samples) {
              w.i64(s.end_ns);
              w.i64(s.wait_ns);
            }
          },
      },
      m);
}

Message get_payload(uint16_t type, Reader& r) {
  switch (type) {
    case 0: {
      Hello h;
      h.rank = r.i32();
      h.size = r.i32();
      h.token = r.str(kMaxTokenBytes);
      return h;
    }
    case 1: return Welcome{r.i64()};
    case 2: {
      Ready x;
      uint32_t n = r.count(1u << 20, 1 + 4 + 8);
      x.entries.resize(n);
      for (auto& e : x.entries) {
        uint8_t form = r.u8();
        if (form == 1) {
          e.full = get_request(r);
        } else if (form == 0) {
          e.id = r.u32();
        } else if (r.ok()) {
          r.fail("invalid readiness entry form " + std::to_string(form));
        }
        e.dim0 = r.i64();
      }
      x.evictions_seen = r.u64();
      x.schedule_seen = r.u64();
      return x;
    }
    case 3: {
      PlanBatch x;
      x.assignments.resize(r.count(1u << 20, 8));
      for (auto& a : x.assignments) {
        a.id = r.u32();
        a.name = r.str(kMaxNameBytes);
      }
      x.plans.resize(r.count(1u << 20, 8 + 4 + 4 + 4 + 4 + 4 + 4 + 1));
      for (auto& p : x.plans) {
        p.seq = r.u64();
        p.kind = get_enum<PlanKind>(r, kNumPlanKinds, "plan kind");
        p.op = get_enum<ReduceOp>(r, kNumReduceOps, "reduce op");
        p.dtype = get_enum<DataType>(r, kNumDataTypes, "dtype");
        p.device = get_enum<Device::Kind>(r, 2, "device kind");
        p.root = r.i32();
        p.ids.resize(r.count(1u << 20, 4));
        for (auto& id : p.ids) id = r.u32();
        p.last_ranks.resize(r.count(1u << 20, 4));
        for (auto& lr : p.last_ranks) lr = r.i32();
        p.dim0_per_rank.resize(r.count(kMaxRank, 8));
        for (auto& d : p.dim0_per_rank) d = r.i64();
        p.code = get_enum<StatusCode>(r, static_cast<int>(StatusCode::kUnimplemented) + 1,
                                      "status code");
        p.algorithm = r.u8();
        if (r.ok() && p.algorithm >= ops::kNumAlgorithms) {
          r.fail("invalid algorithm " + std::to_string(p.algorithm));
        }
        p.mode = get_enum<SyncMode>(r, 2, "sync mode");
        p.mode_reason = r.str(1024);
        uint8_t counted = r.u8();
        if (r.ok() && counted > 1) r.fail("invalid counted flag");
        p.counted = counted == 1;
        p.missing.resize(r.count(1u << 20, 4));
        for (auto& m : p.missing) {
          m.resize(r.count(kMaxRank, 4));
          for (auto& rank : m) rank = r.i32();
        }
        p.message = r.str(1u << 16);
      }
      x.evicted.resize(r.count(1u << 20, 4));
      for (auto& id : x.evicted) id = r.u32();
      uint8_t has_schedule = r.u8();
      if (r.ok() && has_schedule > 1) r.fail("invalid schedule flag");
      if (has_schedule == 1) x.schedule = get_schedule(r);
      return x;
    }
    case 4: return Goodbye{};
    case 5: return GoodbyeAck{};
    case 6: return Flush{};
    case 7: return Heartbeat{};
    case 8: {
      PeerFailed x;
      x.rank = r.i32();
      x.reason = r.str(4096);
      return x;
    }
    case 9: return get_versioned<FastAbort>(r);
    case 10: return get_versioned<FastExit>(r);
    case 11: {
      FastReport x;
      x.version = r.u64();
      x.first = r.u64();
      x.samples.resize(r.count(1u << 20, 16));
      for (auto& s : x.samples) {
        s.end_ns = r.i64();
        s.wait_ns = r.i64();
      }
      return x;
    }
    default: r.fail("unknown message type " + std::to_string(type)); return Goodbye{};
  }
}

}  // namespace

std::string_view kind_name(CollectiveKind k) {
  switch (k) {
    case CollectiveKind::kAllreduce: return "allreduce";
    case CollectiveKind::kBroadcast: return "broadcast";
    case CollectiveKind::kAllgather: return "allgather";
  }
  return "invalid-kind";
}

void encode(const Message& m, std::vector<uint8_t>& out) {
  Writer w;
  w.u32(kFrameMagic);
  w.u16(kWireVersion);
  w.u16(static_cast<uint16_t>(m.index()));
  w.u32(0);  // payload length, patched below
  put_payload(w, m);
  auto& b = w.bytes();
  uint32_t len = static_cast<uint32_t>(b.size() - kFrameHeaderBytes);
  for (int i = 0; i < 4; ++i) b[8 + i] = static_cast<uint8_t>(len >> (8 * i));
  out.insert(out.end(), b.begin(), b.end());
}

std::vector<uint8_t> encode(const Message& m) {
  std::vector<uint8_t> out;
  encode(m, out);
  return out;
}

Status decode_header(const uint8_t* header, uint32_t* payload_bytes, uint16_t* type) {
  Reader r(header, kFrameHeaderBytes);
  uint32_t magic = r.u32();
  uint16_t version = r.u16();
  *type = r.u16();
  *payload_bytes = r.u32();
  if (magic != kFrameMagic) {
    return Status(StatusCode::kInvalidArgument, "control frame rejected: bad magic (not a quorum peer)");
  }
  if (version != kWireVersion) {
    return Status(StatusCode::kInvalidArgument,
                  "control frame rejected: wire version " + std::to_string(version) +
                      ", this build speaks " + std::to_string(kWireVersion));
  }
  if (*payload_bytes > kMaxFramePayload) {
    return Status(StatusCode::kInvalidArgument,
                  "control frame rejected: payload of " + std::to_string(*payload_bytes) +
                      " bytes exceeds the " + std::to_string(kMaxFramePayload) + "-byte limit");
  }
  if (*type >= std::variant_size_v<Message>) {
    return Status(StatusCode::kInvalidArgument,
                  "control frame rejected: unknown message type " + std::to_string(*type));
  }
  return Status::ok();
}

Status decode_payload(uint16_t type, const uint8_t* payload, size_t size, Message* out) {
  Reader r(payload, size);
  Message m = get_payload(type, r);
  if (r.ok() && r.remaining() != 0) {
    r.fail(std::to_string(r.remaining()) + " trailing bytes");
  }
  if (!r.ok()) {
    return Status(StatusCode::kInvalidArgument, "control message of type " +
                                                    std::to_string(type) +
                                                    " rejected: " + r.error());
  }
  *out = std::move(m);
  return Status::ok();
}

Status decode_frame(const uint8_t* data, size_t size, Message* out) {
  if (size < kFrameHeaderBytes) {
    return Status(StatusCode::kInvalidArgument,
                  "control frame rejected: truncated header (" + std::to_string(size) + " bytes)");
  }
  uint32_t len = 0;
  uint16_t type = 0;
  QUORUM_RETURN_IF_ERROR(decode_header(data, &len, &type));
  if (size - kFrameHeaderBytes != len) {
    return Status(StatusCode::kInvalidArgument,
                  "control frame rejected: header announces " + std::to_string(len) +
                      " payload bytes but " + std::to_string(size - kFrameHeaderBytes) +
                      " are present");
  }
  return decode_payload(type, data + kFrameHeaderBytes, len, out);
}

}  // namespace quorum::coord
