#include "runtime/config.h"

#include <arpa/inet.h>

#include <charconv>
#include <cmath>
#include <cstdlib>

namespace quorum {
namespace {

bool parse_int(std::string_view s, int64_t* v) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
  return ec == std::errc() && p == s.data() + s.size();
}

bool parse_double(std::string_view s, double* v) {
  // Plain decimal only: no leading blanks, no hex or inf/nan spellings strtod would take.
  if (s.empty() || s.find_first_not_of("0123456789.eE+-") != std::string_view::npos) return false;
  std::string copy(s);
  char* end = nullptr;
  *v = std::strtod(copy.c_str(), &end);
  return end == copy.c_str() + copy.size() && std::isfinite(*v);
}

template <auto Field, int64_t Min, int64_t Max>
bool set_int(std::string_view text, Config& c) {
  int64_t v = 0;
  if (!parse_int(text, &v) || v < Min || v > Max) return false;
  c.*Field = v;
  return true;
}

// A byte count: an integer with an optional K, M or G suffix (binary units).
template <auto Field, int64_t Max>
bool set_bytes(std::string_view text, Config& c) {
  int64_t scale = 1;
  if (!text.empty()) {
    switch (text.back()) {
      case 'K': case 'k': scale = int64_t{1} << 10; break;
      case 'M': case 'm': scale = int64_t{1} << 20; break;
      case 'G': case 'g': scale = int64_t{1} << 30; break;
      default: break;
    }
    if (scale != 1) text.remove_suffix(1);
  }
  int64_t v = 0;
  if (!parse_int(text, &v) || v < 0 || v > Max / scale) return false;
  c.*Field = v * scale;
  return true;
}

template <auto Field, int MinTimes1000, int64_t Max>
bool set_double(std::string_view text, Config& c) {
  double v = 0;
  if (!parse_double(text, &v) || v < MinTimes1000 / 1000.0 || v > static_cast<double>(Max)) {
    return false;
  }
  c.*Field = v;
  return true;
}

template <auto Field>
bool set_string(std::string_view text, Config& c) {
  c.*Field = std::string(text);
  return true;
}

bool set_control_addr(std::string_view text, Config& c) {
  if (!text.empty()) {
    in_addr parsed{};
    if (inet_pton(AF_INET, std::string(text).c_str(), &parsed) != 1) return false;
  }
  c.control_addr = std::string(text);
  return true;
}

bool set_log_level(std::string_view text, Config& c) {
  for (int l = 0; l <= static_cast<int>(LogLevel::kOff); ++l) {
    std::string_view name = level_name(static_cast<LogLevel>(l));
    if (text.size() == name.size() &&
        std::equal(text.begin(), text.end(), name.begin(),
                   [](char a, char b) { return std::toupper(static_cast<unsigned char>(a)) == b; })) {
      c.log_level = static_cast<LogLevel>(l);
      return true;
    }
  }
  return false;
}

// An enum knob kept as its word: one of `Words`, spelt exactly.
template <auto Field, const auto& Words>
bool set_word(std::string_view text, Config& c) {
  for (const char* w : Words) {
    if (text == w) {
      c.*Field = w;
      return true;
    }
  }
  return false;
}

constexpr const char* kAlgorithms[] = {"auto", "native", "ring", "tree", "hierarchical"};
constexpr const char* kSwitches[] = {"auto", "on", "off"};
constexpr const char* kCompressions[] = {"none", "fp16", "bf16"};
constexpr const char* kSyncModes[] = {"sync", "bounded", "periodic", "auto"};

}  // namespace

std::string job_settings_text(const Config& c) {
  std::string t;
  t += "QUORUM_COMPRESSION=" + c.compression + "\n";
  t += "QUORUM_COMPRESSION_FEEDBACK=" + std::to_string(c.compression_feedback) + "\n";
  t += "QUORUM_SYNC_MODE=" + c.sync_mode + "\n";
  t += "QUORUM_AVERAGE_PERIOD=" + std::to_string(c.average_period) + "\n";
  t += "QUORUM_AVERAGE_WARMUP=" + std::to_string(c.average_warmup) + "\n";
  return t;
}

DataType compression_dtype(const Config& config) {
  if (config.compression == "fp16") return DataType::kF16;
  if (config.compression == "bf16") return DataType::kBF16;
  return DataType::kF32;
}

namespace {

bool set_log_subsystems(std::string_view text, Config& c) {
  return parse_subsystems(text, &c.log_subsystems);
}

constexpr KnobSpec kKnobs[] = {
    {"QUORUM_FUSION_THRESHOLD", "HOROVOD_FUSION_THRESHOLD", "bytes", "64M", "0 .. 1G",
     "Largest fused buffer; allreduces are packed together up to this many bytes (f16/bf16 count "
     "4 bytes an element on the wire). 0 disables fusion.",
     set_bytes<&Config::fusion_threshold, int64_t{1} << 30>},
    {"QUORUM_FUSION_MAX_TENSOR", nullptr, "bytes", "256K", "0 .. 1G",
     "Largest tensor packed into a fusion buffer; a larger one is reduced in place in a plan of "
     "its own, because copying it into the buffer and out again costs more than the latency "
     "fusion saves (0: nothing is fused). Rank 0's value decides for the job.",
     set_bytes<&Config::fusion_max_tensor, int64_t{1} << 30>},
    {"QUORUM_CYCLE_TIME_MS", "HOROVOD_CYCLE_TIME", "milliseconds", "1", "0 .. 10000",
     "Longest time a ready allreduce is held back so more tensors can join its fusion buffer. "
     "A learned bucket goes out as soon as its last tensor is ready, and everything goes at once "
     "when nothing else is on its way. Each rank also holds back its readiness for a tensor, at "
     "most this long, until the rest of the fused plan it last ran in is enqueued there too "
     "(one control message per bucket instead of one per tensor). In bounded mode, also the "
     "grace given to late ranks after the quorum arrived.",
     set_double<&Config::cycle_time_ms, 0, 10000>},
    {"QUORUM_ALGO", nullptr, "enum", "auto", "auto|native|ring|tree|hierarchical",
     "Allreduce algorithm on MPI: native is MPI_Allreduce, ring and tree run on point-to-point "
     "messages, hierarchical reduces inside each host, then across hosts, then shares inside "
     "the host again (a ring on one host); auto picks per plan from an alpha-beta model fitted "
     "to the collectives timed so far.",
     set_word<&Config::algorithm, kAlgorithms>},
    {"QUORUM_HIERARCHICAL", nullptr, "enum", "auto", "auto|on|off",
     "The hierarchical allreduce for jobs that span hosts. auto: QUORUM_ALGO=auto may choose it "
     "per plan when the job spans hosts with more than one rank on some host (its intra-host "
     "and inter-host levels are fitted separately). on: every host plan runs it (as "
     "QUORUM_ALGO=hierarchical). off: never.",
     set_word<&Config::hierarchical, kSwitches>},
    {"QUORUM_COMPRESSION", nullptr, "enum", "none", "none|fp16|bf16",
     "Floating-point allreduces travel as fp16 or bf16 (half the bytes of f32, lossy): cast "
     "when packed, combined in f32 at each step and cast back when unpacked, on the host (MPI) "
     "and on CUDA (NCCL) alike. Host plans of bounded rounds (which carry counts) and the "
     "folds of flush() are not compressed; a compressed host plan runs as a ring where native "
     "was chosen (MPI has no half arithmetic). none: f32/f64 travel as themselves and f16/bf16 "
     "sum in f32. Rank 0's value decides for the job.",
     set_word<&Config::compression, kCompressions>},
    {"QUORUM_COMPRESSION_FEEDBACK", nullptr, "int", "0", "0 .. 1",
     "1: error feedback for host compression: what rounding to fp16/bf16 took off a tensor's "
     "contribution is kept on its rank and added to that tensor's next one, so no part of a "
     "gradient is lost for good. Sum/Average of host tensors only. Rank 0's value decides for "
     "the job.",
     set_int<&Config::compression_feedback, 0, 1>},
    {"QUORUM_SYNC_MODE", nullptr, "enum", "sync", "sync|bounded|periodic|auto",
     "sync: every round waits for every rank. bounded: a Sum/Average round runs once "
     "QUORUM_QUORUM ranks are in, late gradients join later rounds (at most QUORUM_STALENESS "
     "rounds late). periodic (local SGD): after QUORUM_AVERAGE_WARMUP sync steps each rank "
     "applies its own gradients and the parameters are averaged every QUORUM_AVERAGE_PERIOD "
     "steps (the framework asks quorum::begin_step() what each step does). auto: rank 0 picks "
     "among the three from observed straggler waiting and communication share. Rank 0's value "
     "decides for the job.",
     set_word<&Config::sync_mode, kSyncModes>},
    {"QUORUM_AVERAGE_PERIOD", nullptr, "steps", "8", "1 .. 100000",
     "periodic: steps between parameter averagings (each a segment whose mode auto decides).",
     set_int<&Config::average_period, 1, 100000>},
    {"QUORUM_AVERAGE_WARMUP", nullptr, "steps", "0", "0 .. 1000000000",
     "periodic and auto: steps of plain gradient allreduce before the first local step.",
     set_int<&Config::average_warmup, 0, 1000000000>},
    {"QUORUM_PERIODIC_ENTER", nullptr, "fraction", "0.30", "0 .. 1",
     "auto: switch to periodic when communication, less the time spent waiting for "
     "stragglers, exceeds this share of step time (and stragglers stay below "
     "QUORUM_ASYNC_ENTER).",
     set_double<&Config::periodic_enter, 0, 1>},
    {"QUORUM_FAST_PATH", nullptr, "int", "1", "0 .. 1",
     "1 (default): once a step's plans have repeated, rank 0 hands every rank that schedule "
     "and the ranks agree on readiness among themselves (one tiny allreduce per group of ready "
     "buckets) instead of asking rank 0 each round; anything off the schedule goes back "
     "through rank 0. 0: every round is negotiated with rank 0. Rank 0's value decides for the "
     "job.",
     set_int<&Config::fast_path, 0, 1>},
    {"QUORUM_CACHE_CAPACITY", nullptr, "names", "4096", "16 .. 16777216",
     "Tensor names the coordinator keeps ids and descriptions for (the id fast path). Past it, "
     "the least recently used idle names are forgotten on every rank and described again in "
     "full if they come back, so a job that invents new names every step stays in bounded "
     "memory. Rank 0's value decides for the job.",
     set_int<&Config::cache_capacity, 16, 16777216>},
    {"QUORUM_STALENESS", nullptr, "rounds", "2", "1 .. 1000",
     "Bounded mode: how many rounds a rank's gradient may be applied late.",
     set_int<&Config::staleness, 1, 1000>},
    {"QUORUM_QUORUM", nullptr, "ranks", "0", "0 .. 1048576 (0 = a majority; at most the job size)",
     "Bounded mode: ranks that must be in before a round may run.",
     set_int<&Config::quorum, 0, 1048576>},
    {"QUORUM_ASYNC_ENTER", nullptr, "fraction", "0.10", "0 .. 1",
     "auto: switch to bounded when waiting for stragglers exceeds this share of step time.",
     set_double<&Config::async_enter, 0, 1>},
    {"QUORUM_ASYNC_EXIT", nullptr, "fraction", "0.05", "0 .. 1 (below QUORUM_ASYNC_ENTER)",
     "auto: switch back to sync when waiting falls below this share of step time.",
     set_double<&Config::async_exit, 0, 1>},
    {"QUORUM_POLICY_WINDOW", nullptr, "rounds", "20", "2 .. 100000",
     "auto: rounds of evidence behind each decision.",
     set_int<&Config::policy_window, 2, 100000>},
    {"QUORUM_FAILURE_TIMEOUT_SEC", nullptr, "seconds", "30", "1 .. 3600",
     "A rank (or the coordinator) silent this long, heartbeats included, is declared failed: "
     "every other rank fails its pending work naming it.",
     set_double<&Config::failure_timeout_sec, 1000, 3600>},
    {"QUORUM_STALL_WARNING_SEC", nullptr, "seconds", "60", "1 .. 86400",
     "Rank 0 logs each tensor some ranks submitted and others have not for this long, with "
     "the missing ranks.",
     set_double<&Config::stall_warning_sec, 1000, 86400>},
    {"QUORUM_STALL_ABORT_SEC", nullptr, "seconds", "0", "0 (never) .. 86400",
     "After this long a stalled tensor fails on every rank with the stall message.",
     set_double<&Config::stall_abort_sec, 0, 86400>},
    {"QUORUM_LOG_LEVEL", nullptr, "enum", "warn", "trace|debug|info|warn|error|off",
     "Lowest level of log line written to stderr.", set_log_level},
    {"QUORUM_LOG_SUBSYS", nullptr, "list", "all", "all or a comma list of init,engine,coord,ops,config",
     "Subsystems whose log lines are shown.", set_log_subsystems},
    {"QUORUM_THREAD_AFFINITY", nullptr, "int", "-1", "-1 .. 65535",
     "Core (hwloc logical index) to pin the engine thread to; -1 leaves it unpinned.",
     set_int<&Config::thread_affinity, -1, 65535>},
    {"QUORUM_CONTROL_PORT", nullptr, "int", "0", "0 .. 65535",
     "TCP port of the coordinator on rank 0; 0 picks a free port.",
     set_int<&Config::control_port, 0, 65535>},
    {"QUORUM_CONTROL_ADDR", nullptr, "address", "",
     "empty, or an IPv4 address of rank 0's host (0.0.0.0 = all interfaces)",
     "Address the coordinator on rank 0 listens on and publishes. Empty: 127.0.0.1 when all "
     "ranks share one host, else the address rank 0's host name resolves to.",
     set_control_addr},
    {"QUORUM_CONNECT_TIMEOUT_SEC", nullptr, "seconds", "60", "0.1 .. 3600",
     "How long a rank keeps trying to reach the coordinator at init.",
     set_double<&Config::connect_timeout_sec, 100, 3600>},
    {"QUORUM_SHUTDOWN_TIMEOUT_SEC", nullptr, "seconds", "60", "0.1 .. 3600",
     "How long rank 0 waits at shutdown for the other ranks to leave before it stops the "
     "coordinator anyway.",
     set_double<&Config::shutdown_timeout_sec, 100, 3600>},
    {"QUORUM_TIMELINE", "HOROVOD_TIMELINE", "path", "", "a writable file path, or empty",
     "Write a Chrome-trace timeline per rank from init on; rank R writes PATH with .rankR "
     "before the extension.",
     set_string<&Config::timeline>},
    {"QUORUM_TIMELINE_MAX_MB", nullptr, "int", "512", "1 .. 1048576",
     "Size cap of each rank's timeline file in MiB; events past it are counted, not written.",
     set_int<&Config::timeline_max_mb, 1, 1048576>},
};

}  // namespace

std::span<const KnobSpec> knobs() { return kKnobs; }

EnvLookup process_env() {
  return [](const char* name) -> std::optional<std::string> {
    const char* v = std::getenv(name);
    if (!v) return std::nullopt;
    return std::string(v);
  };
}

Status apply_job_settings(const std::string& text, Config* config,
                          std::vector<std::string>* differing) {
  const std::string before = job_settings_text(*config);
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    const size_t eq = line.find('=');
    const KnobSpec* spec = nullptr;
    for (const KnobSpec& k : knobs()) {
      if (eq != std::string::npos && line.compare(0, eq, k.name) == 0 &&
          std::string_view(k.name).size() == eq) {
        spec = &k;
      }
    }
    if (!spec || !spec->apply(std::string_view(line).substr(eq + 1), *config)) {
      return Status(StatusCode::kInternal, "rank 0's job setting '" + line + "' is not valid here");
    }
    if (before.find(line + "\n") == std::string::npos && differing) {
      differing->push_back(line.substr(0, eq));
    }
  }
  return Status::ok();
}

Status load_config(const EnvLookup& env, Config* out, std::vector<KnobSetting>* settings) {
  Config c;
  c.nccl_algo = env("NCCL_ALGO");
  std::string errors;  // every bad knob is reported, not just the first
  for (const KnobSpec& k : kKnobs) {
    std::string value = k.default_value;
    std::string source = "default";
    if (auto v = env(k.name)) {
      value = *v;
      source = k.name;
    } else if (k.alias) {
      if (auto a = env(k.alias)) {
        value = *a;
        source = k.alias;
      }
    }
    const bool valid = k.apply(value, c);
    if (!valid) {
      if (!errors.empty()) errors += "; ";
      errors += source + "='" + value + "' is not valid: expected " + k.type + " in " + k.range;
    }
    if (settings) settings->push_back({&k, value, source, valid});
  }
  if (errors.empty() && c.async_exit >= c.async_enter) {
    errors = "QUORUM_ASYNC_EXIT=" + std::to_string(c.async_exit) +
             " must be below QUORUM_ASYNC_ENTER=" + std::to_string(c.async_enter);
  }
  if (!errors.empty()) return Status(StatusCode::kInvalidArgument, errors);
  *out = c;
  return Status::ok();
}

}  // namespace quorum
