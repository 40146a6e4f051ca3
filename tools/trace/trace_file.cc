#include "tools/trace/trace_file.h"

#include <cmath>
#include <utility>

#include "tools/trace/io.h"

namespace quorum::trace {
namespace {

using nlohmann::json;

Status invalid(const std::string& path, const std::string& problem) {
  return Status(StatusCode::kInvalidArgument, path + ": " + problem);
}

std::string quoted(std::string_view key) {
  std::string out;
  out.reserve(key.size() + 2);
  out += '"';
  out += key;
  out += '"';
  return out;
}

std::string wrong_type(std::string_view key, const json& v, const char* expected) {
  return quoted(key) + " is " + v.type_name() + ", expected " + expected;
}

// Each reader returns "" on success (or when the optional key is absent) and the problem
// otherwise. Integers written as 3.0 are accepted: JSON has one number type.
std::string read_int(const json& obj, std::string_view key, bool required, int64_t* out) {
  auto it = obj.find(key);
  if (it == obj.end()) return required ? "missing " + quoted(key) : "";
  if (it->is_number_integer()) {
    *out = it->get<int64_t>();
    return "";
  }
  if (it->is_number_float()) {
    const double d = it->get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) {
      *out = static_cast<int64_t>(d);
      return "";
    }
  }
  return wrong_type(key, *it, "an integer");
}

std::string read_number(const json& obj, std::string_view key, bool required, double* out) {
  auto it = obj.find(key);
  if (it == obj.end()) return required ? "missing " + quoted(key) : "";
  if (!it->is_number()) return wrong_type(key, *it, "a number");
  *out = it->get<double>();
  if (!std::isfinite(*out)) return quoted(key) + " is not finite";
  return "";
}

std::string read_string(const json& obj, std::string_view key, bool required, std::string* out) {
  auto it = obj.find(key);
  if (it == obj.end()) return required ? "missing " + quoted(key) : "";
  if (!it->is_string()) return wrong_type(key, *it, "a string");
  *out = it->get<std::string>();
  return "";
}

// Returns the problem a reader reports from the enclosing function.
#define TRACE_READ(call)                        \
  do {                                          \
    std::string trace_err_ = (call);            \
    if (!trace_err_.empty()) return trace_err_; \
  } while (0)

std::string read_args(const json& args, Event* e) {
  TRACE_READ(read_string(args, "tensor", false, &e->tensor));
  TRACE_READ(read_int(args, "plan", false, &e->plan));
  TRACE_READ(read_int(args, "bytes", false, &e->bytes));
  TRACE_READ(read_int(args, "last_rank", false, &e->last_rank));
  TRACE_READ(read_int(args, "step", false, &e->step));
  TRACE_READ(read_string(args, "algorithm", false, &e->algorithm));
  TRACE_READ(read_int(args, "dropped", false, &e->dropped));
  TRACE_READ(read_int(args, "schedule", false, &e->schedule));
  TRACE_READ(read_int(args, "round", false, &e->round));
  int64_t voted = 0;
  TRACE_READ(read_int(args, "voted", false, &voted));
  e->voted = voted == 1;
  // `reason` is free text in mode and timeline_dropped events; anything else is not ours.
  if (auto it = args.find("reason"); it != args.end() && it->is_string())
    e->reason = it->get<std::string>();
  if (auto it = args.find("tensors"); it != args.end()) {
    if (it->is_array()) {
      for (const json& name : *it) {
        if (!name.is_string())
          return "\"tensors\" holds a " + std::string(name.type_name()) + ", expected tensor names";
        e->tensors.push_back(name.get<std::string>());
      }
    } else {
      TRACE_READ(read_int(args, "tensors", false, &e->tensor_count));
    }
  }
  return "";
}

std::string read_event(const json& j, Event* e) {
  if (!j.is_object()) return std::string("is ") + j.type_name() + ", expected an object";
  std::string ph;
  TRACE_READ(read_string(j, "ph", true, &ph));
  if (ph.size() != 1) return "\"ph\" is \"" + ph + "\", expected one character";
  e->ph = ph[0];
  TRACE_READ(read_string(j, "name", false, &e->name));
  TRACE_READ(read_string(j, "cat", false, &e->cat));
  TRACE_READ(read_int(j, "tid", false, &e->tid));
  const bool needs_ts = e->ph == 'X' || e->ph == 'i' || e->ph == 'I';
  e->has_ts = j.contains("ts");
  TRACE_READ(read_number(j, "ts", needs_ts, &e->ts));
  if (e->ph == 'X') {
    TRACE_READ(read_number(j, "dur", true, &e->dur));
    if (e->dur < 0) return "\"dur\" is negative";
  }
  if (auto it = j.find("args"); it != j.end()) {
    if (!it->is_object()) return wrong_type("args", *it, "an object");
    TRACE_READ(read_args(*it, e));
  }
  return "";
}

std::string read_header(const json& od, TraceHeader* h) {
  int64_t version = 0;
  TRACE_READ(read_int(od, "version", true, &version));
  if (version != kTraceVersion) {
    return "unsupported timeline version " + std::to_string(version) +
           " (this quorum-trace reads version " + std::to_string(kTraceVersion) + ")";
  }
  h->version = static_cast<int>(version);
  TRACE_READ(read_string(od, "run_id", true, &h->run_id));
  if (h->run_id.empty()) return "otherData.run_id is empty";
  TRACE_READ(read_int(od, "rank", true, &h->rank));
  TRACE_READ(read_int(od, "size", true, &h->size));
  if (h->size < 1) return "otherData.size is " + std::to_string(h->size) + ", expected >= 1";
  if (h->rank < 0 || h->rank >= h->size) {
    return "otherData.rank " + std::to_string(h->rank) + " is outside [0, size " +
           std::to_string(h->size) + ")";
  }
  TRACE_READ(read_number(od, "clock_offset_us", true, &h->clock_offset_us));
  TRACE_READ(read_string(od, "host", false, &h->host));
  TRACE_READ(read_int(od, "pid", false, &h->pid));
  TRACE_READ(read_string(od, "clock", false, &h->clock));
  return "";
}

#undef TRACE_READ

}  // namespace

Status parse_trace(const std::string& path, std::string_view text, TraceFile* out, RawEvents raw) {
  json doc;
  try {
    doc = json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    // e.what() is "[json.exception.parse_error.101] parse error at line 3, column 1: ...".
    std::string what = e.what();
    if (auto pos = what.find("] "); pos != std::string::npos) what = what.substr(pos + 2);
    const bool at_end = e.byte >= text.size();
    return invalid(path,
                   std::string("not valid JSON") + (at_end ? " (truncated?)" : "") + ": " + what);
  }
  if (!doc.is_object()) {
    return invalid(path, std::string("not a quorum trace: the top level is ") + doc.type_name() +
                             ", expected an object with otherData and traceEvents");
  }
  auto od = doc.find("otherData");
  if (od == doc.end() || !od->is_object()) {
    return invalid(path, "not a quorum trace: no otherData object (expected otherData.format \"" +
                             std::string(kTraceFormat) + "\")");
  }
  auto format = od->find("format");
  if (format == od->end()) {
    return invalid(path, "not a quorum trace: otherData.format is missing (expected \"" +
                             std::string(kTraceFormat) + "\")");
  }
  if (!format->is_string() || format->get<std::string>() != kTraceFormat) {
    std::string hint;
    if (format->is_string() && format->get<std::string>() == "quorum-timeline-merged") {
      hint = "; this is quorum-trace merge output, pass the per-rank files";
    }
    return invalid(path, "not a quorum trace: otherData.format is " + format->dump() +
                             ", expected \"" + std::string(kTraceFormat) + "\"" + hint);
  }

  TraceFile t;
  t.path = path;
  if (std::string err = read_header(*od, &t.header); !err.empty()) {
    return invalid(path, "otherData: " + err);
  }
  auto events = doc.find("traceEvents");
  if (events == doc.end()) return invalid(path, "missing traceEvents");
  if (!events->is_array()) {
    return invalid(path,
                   std::string("traceEvents is ") + events->type_name() + ", expected an array");
  }
  t.events.resize(events->size());
  for (size_t i = 0; i < events->size(); ++i) {
    if (std::string err = read_event((*events)[i], &t.events[i]); !err.empty()) {
      return invalid(path, "traceEvents[" + std::to_string(i) + "]: " + err);
    }
  }
  if (raw == RawEvents::kKeep) t.raw_events = std::move(*events);
  *out = std::move(t);
  return Status::ok();
}

Status load_trace_file(const std::string& path, TraceFile* out, RawEvents raw) {
  std::string text;
  QUORUM_RETURN_IF_ERROR(read_text_file(path, &text));
  return parse_trace(path, text, out, raw);
}

}  // namespace quorum::trace
