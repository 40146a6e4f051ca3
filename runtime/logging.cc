#include "runtime/logging.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>

namespace quorum {
namespace {

std::atomic<uint8_t> g_level{static_cast<uint8_t>(LogLevel::kWarn)};
std::atomic<uint32_t> g_mask{~0u};
std::atomic<int> g_rank{-1};

constexpr std::string_view kSubsysNames[] = {"init", "engine", "coord", "ops", "config"};

}  // namespace

std::string_view level_name(LogLevel l) {
  constexpr std::string_view names[] = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "OFF"};
  return names[static_cast<size_t>(l)];
}

std::string_view subsys_name(Subsys s) { return kSubsysNames[static_cast<size_t>(s)]; }

bool parse_subsystems(std::string_view text, uint32_t* mask) {
  if (text == "all") {
    *mask = ~0u;
    return true;
  }
  if (text.empty()) return false;
  uint32_t m = 0;
  while (!text.empty()) {
    size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    bool found = false;
    for (size_t i = 0; i < std::size(kSubsysNames); ++i) {
      if (item == kSubsysNames[i]) {
        m |= 1u << i;
        found = true;
      }
    }
    if (!found) return false;
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
  }
  *mask = m;
  return true;
}

void configure_logging(LogLevel level, uint32_t subsys_mask) {
  g_level = static_cast<uint8_t>(level);
  g_mask = subsys_mask;
}

void set_log_rank(int rank) { g_rank = rank; }

bool log_enabled(LogLevel level, Subsys subsys) {
  return static_cast<uint8_t>(level) >= g_level.load(std::memory_order_relaxed) &&
         level != LogLevel::kOff &&
         (g_mask.load(std::memory_order_relaxed) >> static_cast<unsigned>(subsys) & 1u);
}

LogLine::LogLine(LogLevel level, Subsys subsys, const char* file, int line) {
  static const std::string host = [] {
    char buf[256] = {};
    gethostname(buf, sizeof(buf) - 1);
    return std::string(buf);
  }();
  out_ << host << ':' << getpid() << ":r" << g_rank.load() << " quorum " << level_name(level)
       << ' ' << subsys_name(subsys) << ": ";
  if (g_level.load() <= static_cast<uint8_t>(LogLevel::kDebug)) {
    std::string_view f(file);
    size_t slash = f.rfind('/');
    out_ << '[' << (slash == f.npos ? f : f.substr(slash + 1)) << ':' << line << "] ";
  }
}

LogLine::~LogLine() {
  out_ << '\n';
  std::string s = out_.str();
  std::fwrite(s.data(), 1, s.size(), stderr);
}

}  // namespace quorum
