// Filterable logging: QUORUM_LOG_LEVEL picks the lowest level shown, QUORUM_LOG_SUBSYS the
// subsystems. Each line starts with host, pid and rank and is written to stderr in one call.
// The level is checked before any formatting happens. Thread-safe.
#pragma once

#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>

namespace quorum {

enum class LogLevel : uint8_t { kTrace = 0, kDebug, kInfo, kWarn, kError, kOff };
enum class Subsys : uint8_t { kInit = 0, kEngine, kCoord, kOps, kConfig, kCount };

std::string_view level_name(LogLevel l);
std::string_view subsys_name(Subsys s);

// Parses "all" or a comma-separated list of subsystem names into a bit mask; false on an
// unknown name.
bool parse_subsystems(std::string_view text, uint32_t* mask);

void configure_logging(LogLevel level, uint32_t subsys_mask);
void set_log_rank(int rank);
bool log_enabled(LogLevel level, Subsys subsys);

// One log line; the text goes out when the object dies.
class LogLine {
 public:
  LogLine(LogLevel level, Subsys subsys, const char* file, int line);
  ~LogLine();
  std::ostream& stream() { return out_; }

 private:
  std::ostringstream out_;
};

}  // namespace quorum

namespace quorum {
// Lets the QLOG expression have type void on both branches of its conditional.
struct LogVoidify {
  void operator&(std::ostream&) {}
};
}  // namespace quorum

// QLOG(kWarn, kEngine) << "text"; the stream expression is not evaluated when filtered out.
#define QLOG(level, subsys)                                                                    \
  !::quorum::log_enabled(::quorum::LogLevel::level, ::quorum::Subsys::subsys)                  \
      ? (void)0                                                                                \
      : ::quorum::LogVoidify() &                                                               \
            ::quorum::LogLine(::quorum::LogLevel::level, ::quorum::Subsys::subsys, __FILE__, \
                              __LINE__)                                                        \
                .stream()
