// Per-rank Chrome-trace timeline (format: docs/timeline-format.md). record() never blocks: it
// puts the event on a bounded queue (or counts it as dropped when the queue is full or the size
// cap was reached); a writer thread renders events to JSON and appends them with pwrite()s
// that each also rewrite the closing "]}", so the file is valid JSON at every moment. A kill
// can cut a write short only where it crosses a page boundary of the file (the kernel checks
// for fatal signals between pages), so each write holds the whole events that fit in the page
// it starts in; only a write of a single event may cross into the next page.
// record() is thread-safe; stop() (or the destructor) drains, notes drops in the file, closes.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <variant>
#include <vector>

#include "quorum/types.h"

namespace quorum {

enum class Lane : uint8_t {
  kNone = 0, kNegotiation, kQueue, kCollective, kCallbacks, kWait, kSteps, kMode
};

struct TimelineArg {
  const char* key;  // a string literal
  std::variant<int64_t, double, std::string, std::vector<std::string>> value;
};

struct TimelineEvent {
  char phase = 'X';         // 'X' complete, 'i' instant
  char scope = 'p';         // instants: 'p' process, 'g' global
  Lane lane = Lane::kNone;
  const char* cat = "";     // a string literal
  std::string name;
  int64_t ts_ns = 0;        // steady clock
  int64_t dur_ns = 0;
  std::vector<TimelineArg> args;
};

class Timeline {
 public:
  struct Meta {
    std::string run_id;
    int rank = 0;
    int size = 1;
    double clock_offset_us = 0;
  };

  // `path` is the user's path; the file written is rank_path(path, meta.rank).
  static Status open(const std::string& path, const Meta& meta, size_t max_bytes,
                     size_t queue_capacity, std::unique_ptr<Timeline>* out);
  ~Timeline();

  void record(TimelineEvent&& e);
  void stop();

  const std::string& file() const { return file_; }
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

  // "trace.json" -> "trace.rank3.json"; "trace" -> "trace.rank3.json".
  static std::string rank_path(const std::string& path, int rank);
  static int64_t now_ns();

 private:
  Timeline() = default;
  void run();
  // `body`: events, each starting with ",\n" (the only raw newlines rendered JSON contains).
  void append(const std::string& body);
  bool write_at_end(std::string_view events);  // events + closing at end_; false if it failed

  std::string file_;
  int fd_ = -1;
  size_t max_bytes_ = 0;
  size_t capacity_ = 0;
  int rank_ = 0;
  uint64_t end_ = 0;  // offset of the closing "\n]}\n"
  bool truncated_ = false;

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<TimelineEvent> queue_;
  bool stopping_ = false;
  std::thread writer_;
  std::atomic<uint64_t> dropped_{0};
};

// Where the running timeline is published: any thread may read or replace it. A mutex around a
// shared_ptr rather than std::atomic<std::shared_ptr>, whose GCC 12 implementation ThreadSanitizer
// cannot see through (google/sanitizers#1558). Readers take it once per plan batch or API call.
class TimelineSlot {
 public:
  std::shared_ptr<Timeline> load() const {
    std::lock_guard lk(mu_);
    return current_;
  }
  std::shared_ptr<Timeline> exchange(std::shared_ptr<Timeline> next) {
    std::lock_guard lk(mu_);
    current_.swap(next);
    return next;
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<Timeline> current_;
};

}  // namespace quorum
