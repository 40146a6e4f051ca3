// The knob registry: every QUORUM_* setting is declared once here (name, Horovod alias, type,
// default, accepted range, description) and this is the only code that reads the environment.
// load_config() runs once at init; a bad value is an error naming the variable and the range.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "quorum/types.h"
#include "runtime/logging.h"

namespace quorum {

struct Config {
  int64_t fusion_threshold = 0;  // bytes
  int64_t fusion_max_tensor = 0;  // bytes: larger tensors are never packed into a fusion buffer
  double cycle_time_ms = 0;
  LogLevel log_level = LogLevel::kWarn;
  uint32_t log_subsystems = ~0u;
  int64_t thread_affinity = -1;  // core index for the engine thread; -1 = not pinned
  int64_t control_port = 0;      // coordinator's TCP port on rank 0; 0 = any free port
  std::string control_addr;      // address rank 0 binds and publishes; "" = automatic
  double connect_timeout_sec = 0;
  double shutdown_timeout_sec = 0;
  std::string algorithm = "auto";  // auto | native | ring | tree | hierarchical
  std::string hierarchical = "auto";  // auto | on | off: the hierarchical allreduce across hosts
  std::string sync_mode = "sync";  // sync | bounded | periodic | auto
  int64_t average_period = 8;      // periodic: steps between parameter averagings
  int64_t average_warmup = 0;      // periodic/auto: sync steps before the first local one
  double periodic_enter = 0.30;    // auto: communication share that switches to periodic
  std::string compression = "none";  // none | fp16 | bf16: floating tensors' wire dtype
  int64_t compression_feedback = 0;  // 1: what compression rounds off joins the next round
  int64_t fast_path = 1;         // 1: learned steps run on the fast path (off rank 0)
  int64_t staleness = 2;
  int64_t cache_capacity = 4096;  // names with an id at the coordinator
  int64_t quorum = 0;            // 0 = a majority of ranks
  double async_enter = 0.10;
  double async_exit = 0.05;
  int64_t policy_window = 20;
  double failure_timeout_sec = 30;
  double stall_warning_sec = 60;
  double stall_abort_sec = 0;
  std::string timeline;          // path prefix; "" = no timeline at init
  int64_t timeline_max_mb = 0;
  // Not a knob: NCCL's own NCCL_ALGO as the process was started with it. quorum pins NCCL_ALGO
  // while it creates ring/tree communicators and puts this value back afterwards.
  std::optional<std::string> nccl_algo;
};

// The knobs of the data path that every rank must share (rank 0's values decide): a wire dtype
// or a step schedule that differed between ranks would corrupt or hang a collective.
// job_settings_text() writes them as "NAME=VALUE" lines; apply_job_settings() reads such text
// (rank 0's) into `config` with the registry's own parsers and names, in `differing`, each knob
// whose value on this rank was different. An unparsable line is an error naming it.
std::string job_settings_text(const Config& config);
Status apply_job_settings(const std::string& text, Config* config,
                          std::vector<std::string>* differing);

// QUORUM_COMPRESSION as the dtype floating tensors travel in: kF16, kBF16, or kF32 for none.
DataType compression_dtype(const Config& config);

struct KnobSpec {
  const char* name;
  const char* alias;  // accepted when `name` is unset; nullptr if none
  const char* type;
  const char* default_value;
  const char* range;
  const char* description;
  // Parses `text` into its Config field; false if it is not acceptable.
  bool (*apply)(std::string_view text, Config& config);
};

std::span<const KnobSpec> knobs();

// Looks up an environment variable; nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(const char* name)>;
EnvLookup process_env();

// Where each knob's value came from, for quorum-info.
struct KnobSetting {
  const KnobSpec* spec;
  std::string value;
  std::string source;  // "default", or the variable it was read from
  bool valid = true;   // false: `value` is not acceptable for this knob
};

Status load_config(const EnvLookup& env, Config* out, std::vector<KnobSetting>* settings = nullptr);

}  // namespace quorum
