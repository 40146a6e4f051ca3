#include "runtime/timeline.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>

#include "ops/clock.h"
#include "runtime/bootstrap.h"

namespace quorum {
namespace {

constexpr const char* kClosing = "\n]}\n";
constexpr size_t kClosingBytes = 4;
// Writes within one page of the file are all-or-nothing even under SIGKILL.
constexpr uint64_t kPageBytes = 4096;
// Kept free under the size cap for the truncation and drop markers.
constexpr size_t kMarkerRoom = 600;
// How often the writer appends what was recorded (a killed run loses at most this much).
constexpr auto kFlushInterval = std::chrono::milliseconds(100);

constexpr const char* kLaneNames[] = {"",          "negotiation",    "queue", "collective",
                                      "callbacks", "framework wait", "steps", "mode"};

void append_escaped(std::string& out, const std::string& s) {
  out += '"';
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

void append_number(std::string& out, double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3f", v);
  out += buf;
}

void render(std::string& out, const TimelineEvent& e, int rank) {
  out += "{\"ph\":\"";
  out += e.phase;
  out += "\",\"name\":";
  append_escaped(out, e.name);
  out += ",\"cat\":\"";
  out += e.cat;
  out += "\",\"pid\":" + std::to_string(rank) + ",\"tid\":" +
         std::to_string(static_cast<int>(e.lane)) + ",\"ts\":";
  append_number(out, static_cast<double>(e.ts_ns) / 1e3);
  if (e.phase == 'X') {
    out += ",\"dur\":";
    append_number(out, static_cast<double>(e.dur_ns) / 1e3);
  } else {
    out += ",\"s\":\"";
    out += e.scope;
    out += '"';
  }
  if (!e.args.empty()) {
    out += ",\"args\":{";
    for (size_t i = 0; i < e.args.size(); ++i) {
      if (i) out += ',';
      out += '"';
      out += e.args[i].key;
      out += "\":";
      std::visit(
          [&](const auto& v) {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, int64_t>) {
              out += std::to_string(v);
            } else if constexpr (std::is_same_v<T, double>) {
              append_number(out, v);
            } else if constexpr (std::is_same_v<T, std::string>) {
              append_escaped(out, v);
            } else {
              out += '[';
              for (size_t k = 0; k < v.size(); ++k) {
                if (k) out += ',';
                append_escaped(out, v[k]);
              }
              out += ']';
            }
          },
          e.args[i].value);
    }
    out += '}';
  }
  out += '}';
}

std::string metadata(const char* what, int rank, int tid, const std::string& name) {
  std::string s = "{\"ph\":\"M\",\"name\":\"" + std::string(what) + "\",\"pid\":" +
                  std::to_string(rank) + ",\"tid\":" + std::to_string(tid) + ",\"args\":{\"name\":";
  append_escaped(s, name);
  return s + "}}";
}

}  // namespace

int64_t Timeline::now_ns() { return ops::steady_now_ns(); }

std::string Timeline::rank_path(const std::string& path, int rank) {
  std::string tag = ".rank" + std::to_string(rank);
  size_t slash = path.rfind('/');
  size_t dot = path.rfind('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash) ||
      dot == (slash == std::string::npos ? 0 : slash + 1)) {
    return path + tag + ".json";
  }
  return path.substr(0, dot) + tag + path.substr(dot);
}

Status Timeline::open(const std::string& path, const Meta& meta, size_t max_bytes,
                      size_t queue_capacity, std::unique_ptr<Timeline>* out) {
  if (path.empty()) return Status(StatusCode::kInvalidArgument, "timeline path is empty");
  std::unique_ptr<Timeline> t(new Timeline());
  t->file_ = rank_path(path, meta.rank);
  t->rank_ = meta.rank;
  t->max_bytes_ = max_bytes;
  t->capacity_ = queue_capacity;
  t->fd_ = ::open(t->file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (t->fd_ < 0) {
    return Status(StatusCode::kInvalidArgument,
                  "cannot write timeline file '" + t->file_ + "': " + std::strerror(errno));
  }
  std::string head = "{\"otherData\":{\"format\":\"quorum-timeline\",\"version\":1,\"run_id\":";
  append_escaped(head, meta.run_id);
  head += ",\"rank\":" + std::to_string(meta.rank) + ",\"size\":" + std::to_string(meta.size) +
          ",\"host\":";
  append_escaped(head, this_host());
  head += ",\"pid\":" + std::to_string(getpid()) + ",\"clock_offset_us\":";
  append_number(head, meta.clock_offset_us);
  head += ",\"clock\":\"steady\"},\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n";
  head += metadata("process_name", meta.rank, 0, "rank " + std::to_string(meta.rank));
  for (int lane = 1; lane < static_cast<int>(std::size(kLaneNames)); ++lane) {
    head += ",\n" + metadata("thread_name", meta.rank, lane, kLaneNames[lane]);
  }
  t->end_ = head.size();
  head += kClosing;
  if (::pwrite(t->fd_, head.data(), head.size(), 0) != static_cast<ssize_t>(head.size())) {
    return Status(StatusCode::kInternal, "cannot write timeline file '" + t->file_ + "'");
  }
  t->writer_ = std::thread([p = t.get()] { p->run(); });
  *out = std::move(t);
  return Status::ok();
}

Timeline::~Timeline() { stop(); }

void Timeline::record(TimelineEvent&& e) {
  {
    std::lock_guard lk(mu_);
    if (!stopping_ && queue_.size() < capacity_) {
      queue_.push_back(std::move(e));
      // The writer wakes by itself every kFlushInterval; only a filling queue hurries it.
      if (queue_.size() == capacity_ / 2) cv_.notify_one();
      return;
    }
  }
  dropped_.fetch_add(1, std::memory_order_relaxed);
}

bool Timeline::write_at_end(std::string_view events) {
  // One pwrite replaces the old closing bracket with the new events and a new closing bracket.
  std::string chunk(events);
  chunk += kClosing;
  if (::pwrite(fd_, chunk.data(), chunk.size(), static_cast<off_t>(end_)) !=
      static_cast<ssize_t>(chunk.size())) {
    return false;
  }
  end_ += events.size();
  return true;
}

void Timeline::append(const std::string& body) {
  // The end of the event that starts at `from`.
  auto event_end = [&](size_t from) {
    const size_t next = body.find(",\n", from + 2);
    return next == std::string::npos ? body.size() : next;
  };
  size_t pos = 0;
  while (pos < body.size()) {
    const uint64_t room = kPageBytes - end_ % kPageBytes;  // bytes left in end_'s page
    size_t stop = event_end(pos);  // at least one event, even one that crosses the page
    for (size_t next; stop < body.size() &&
                      (next = event_end(stop)) - pos + kClosingBytes <= room;) {
      stop = next;
    }
    if (!write_at_end(std::string_view(body).substr(pos, stop - pos))) {
      uint64_t lost = 0;  // what could not be written is counted with the drops
      for (size_t at = pos; at < body.size(); at = event_end(at)) ++lost;
      dropped_.fetch_add(lost, std::memory_order_relaxed);
      return;
    }
    pos = stop;
  }
}

void Timeline::run() {
  std::vector<TimelineEvent> batch;
  std::string body;
  for (;;) {
    {
      std::unique_lock lk(mu_);
      // Batches, not single events: one wake-up and one pwrite per interval keeps the writer
      // off the cores the ranks compute on.
      cv_.wait_for(lk, kFlushInterval, [&] { return stopping_ || queue_.size() >= capacity_ / 2; });
      batch.swap(queue_);
      if (batch.empty() && stopping_) break;
    }
    body.clear();
    for (const TimelineEvent& e : batch) {
      if (truncated_) {  // past the size cap: counted, not written
        dropped_.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      size_t before = body.size();
      body += ",\n";
      render(body, e, rank_);
      // Past the cap (less room for the markers): stop here.
      if (end_ + body.size() + kClosingBytes + kMarkerRoom > max_bytes_) {
        body.resize(before);
        truncated_ = true;
        dropped_.fetch_add(1, std::memory_order_relaxed);
        body += ",\n";
        render(body,
               TimelineEvent{'i', 'g', Lane::kNone, "timeline", "timeline_truncated", now_ns(), 0,
                             {{"max_mb", static_cast<double>(max_bytes_) / (1 << 20)}}},
               rank_);
      }
    }
    if (!body.empty()) append(body);
    batch.clear();
  }
  uint64_t drops = dropped_.load();
  if (drops > 0) {
    std::string body = ",\n";
    TimelineEvent e{'i', 'g', Lane::kNone, "timeline", "timeline_dropped", now_ns(), 0,
                    {{"dropped", static_cast<int64_t>(drops)},
                     {"reason", std::string(truncated_ ? "size cap (QUORUM_TIMELINE_MAX_MB)"
                                                       : "queue full")}}};
    render(body, e, rank_);
    append(body);
  }
  ::fsync(fd_);
  ::close(fd_);
  fd_ = -1;
}

void Timeline::stop() {
  {
    std::lock_guard lk(mu_);
    if (stopping_) {
      if (writer_.joinable() && std::this_thread::get_id() != writer_.get_id()) writer_.join();
      return;
    }
    stopping_ = true;
    cv_.notify_one();
  }
  if (writer_.joinable()) writer_.join();
}

}  // namespace quorum
