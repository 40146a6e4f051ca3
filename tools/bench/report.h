// report.h — what every quorum-bench run states about itself (ranks, hosts, settings, the
// QUORUM_*/HOROVOD_* environment) as the text header and as JSON, and the JSON of each
// subcommand's results. Formatting only: the callers decide which rank prints.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "quorum/types.h"
#include "tools/bench/algos.h"
#include "tools/bench/models.h"
#include "tools/bench/sweep.h"
#include "tools/bench/train.h"

namespace quorum::bench {

struct RunInfo {
  std::string command;  // "sweep", "allreduce", "train"
  int ranks = 0;
  int hosts = 0;
  std::vector<std::pair<std::string, std::string>> settings;  // in print order
  std::vector<std::pair<std::string, std::string>> environment;
};

// Collective (counts hosts); every rank gets the same answer.
RunInfo gather_run_info(std::string command,
                        std::vector<std::pair<std::string, std::string>> settings);

// "# quorum-bench sweep: 2 ranks on 1 host" and the settings, '\n'-terminated lines.
std::string header_text(const RunInfo& info);

nlohmann::json sweep_json(const RunInfo& info, const SweepOptions& options,
                          const SweepResult& result);
nlohmann::json algos_json(const RunInfo& info, const AlgosResult& result);
nlohmann::json train_json(const RunInfo& info, const Model& model, const TrainResult& result);

// Writes `j` (indented) to `path`.
Status write_json(const std::string& path, const nlohmann::json& j);

}  // namespace quorum::bench
