// libFuzzer target for the knob registry: load_config() with an environment built from the
// fuzz input must return OK with every value inside its declared range, or an error that names
// a variable the input set. It must never crash, and it must be deterministic.
//
// Input format (text, so seeds are easy to write): line i is the value of the i-th variable in
// the order "every knob's name, then every alias"; a line that is exactly "<unset>" leaves that
// variable unset, and so do lines past the end of the input. Values may hold any byte but '\n'.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/config.h"

namespace {

[[noreturn]] void fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz_config: %s: %s\n", what, detail.c_str());
  std::abort();
}

std::vector<std::string> variable_names() {
  std::vector<std::string> names;
  for (const auto& k : quorum::knobs()) names.push_back(k.name);
  for (const auto& k : quorum::knobs()) {
    if (k.alias) names.push_back(k.alias);
  }
  return names;
}

void check_ranges(const quorum::Config& c) {
  auto expect = [](bool ok, const char* what) {
    if (!ok) fail("accepted value out of its declared range", what);
  };
  expect(c.fusion_threshold >= 0 && c.fusion_threshold <= (int64_t{1} << 30), "fusion_threshold");
  expect(std::isfinite(c.cycle_time_ms) && c.cycle_time_ms >= 0 && c.cycle_time_ms <= 10000,
         "cycle_time_ms");
  expect(c.thread_affinity >= -1 && c.thread_affinity <= 65535, "thread_affinity");
  expect(c.control_port >= 0 && c.control_port <= 65535, "control_port");
  expect(std::isfinite(c.connect_timeout_sec) && c.connect_timeout_sec >= 0.1 &&
             c.connect_timeout_sec <= 3600,
         "connect_timeout_sec");
  expect(std::isfinite(c.shutdown_timeout_sec) && c.shutdown_timeout_sec >= 0.1 &&
             c.shutdown_timeout_sec <= 3600,
         "shutdown_timeout_sec");
  expect(c.algorithm == "auto" || c.algorithm == "native" || c.algorithm == "ring" ||
             c.algorithm == "tree" || c.algorithm == "hierarchical",
         "algorithm");
  expect(c.hierarchical == "auto" || c.hierarchical == "on" || c.hierarchical == "off",
         "hierarchical");
  expect(c.timeline_max_mb >= 1 && c.timeline_max_mb <= 1048576, "timeline_max_mb");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<std::string> names = variable_names();
  std::map<std::string, std::string> env;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  for (size_t i = 0; i < names.size() && !in.empty(); ++i) {
    size_t nl = in.find('\n');
    std::string_view line = in.substr(0, nl);
    in = nl == std::string_view::npos ? std::string_view() : in.substr(nl + 1);
    if (line != "<unset>") env[names[i]] = std::string(line);
  }
  quorum::EnvLookup lookup = [&env](const char* name) -> std::optional<std::string> {
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };

  quorum::Config config;
  std::vector<quorum::KnobSetting> settings;
  quorum::Status s = quorum::load_config(lookup, &config, &settings);
  if (settings.size() != quorum::knobs().size()) {
    fail("settings count", std::to_string(settings.size()));
  }

  quorum::Config again;
  quorum::Status s2 = quorum::load_config(lookup, &again);
  if (s.is_ok() != s2.is_ok() || s.message() != s2.message()) {
    fail("not deterministic", s.message());
  }

  if (s.is_ok()) {
    check_ranges(config);
    return 0;
  }
  // Every "; "-separated complaint starts with a variable this input set, then "='".
  std::string_view msg = s.message();
  if (msg.empty()) fail("error without a message", "");
  while (!msg.empty()) {
    size_t sep = msg.find("; ");
    // A value may itself contain "; ", so accept the first piece that names a set variable and
    // skip pieces that do not start with a name (they belong to the previous value).
    std::string_view piece = msg.substr(0, sep);
    msg = sep == std::string_view::npos ? std::string_view() : msg.substr(sep + 2);
    bool names_one = false;
    for (const auto& [name, value] : env) {
      if (piece.starts_with(name + "='")) names_one = true;
    }
    if (names_one) return 0;
  }
  fail("error names no variable the input set", s.message());
}
