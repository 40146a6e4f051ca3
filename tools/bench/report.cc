#include "tools/bench/report.h"

#include <mpi.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "quorum/quorum.h"
#include "tools/bench/stats.h"

extern char** environ;

namespace quorum::bench {
namespace {

std::vector<std::pair<std::string, std::string>> tuning_environment() {
  std::vector<std::pair<std::string, std::string>> env;
  for (char** e = environ; e && *e; ++e) {
    const char* entry = *e;
    if (std::strncmp(entry, "QUORUM_", 7) != 0 && std::strncmp(entry, "HOROVOD_", 8) != 0) continue;
    const char* eq = std::strchr(entry, '=');
    if (!eq) continue;
    env.emplace_back(std::string(entry, eq), std::string(eq + 1));
  }
  std::sort(env.begin(), env.end());
  return env;
}

nlohmann::json pairs_json(const std::vector<std::pair<std::string, std::string>>& pairs) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : pairs) j[k] = v;
  return j;
}

nlohmann::json info_json(const RunInfo& info) {
  return {{"tool", "quorum-bench"},
          {"command", info.command},
          {"ranks", info.ranks},
          {"hosts", info.hosts},
          {"settings", pairs_json(info.settings)},
          {"environment", pairs_json(info.environment)}};
}

// A table's JSON: the run, its rows, and whether every element was right.
nlohmann::json results_json(const RunInfo& info, nlohmann::json rows, long long wrong) {
  nlohmann::json j = info_json(info);
  j["results"] = std::move(rows);
  j["verified"] = wrong == 0;
  j["wrong"] = wrong;
  return j;
}

}  // namespace

RunInfo gather_run_info(std::string command,
                        std::vector<std::pair<std::string, std::string>> settings) {
  RunInfo info;
  info.command = std::move(command);
  info.ranks = quorum::size();
  info.hosts = static_cast<int>(sum_everywhere(quorum::local_rank() == 0 ? 1 : 0));
  info.settings = std::move(settings);
  info.environment = tuning_environment();
  return info;
}

std::string header_text(const RunInfo& info) {
  std::string out = "# quorum-bench " + info.command + ": " + std::to_string(info.ranks) +
                    (info.ranks == 1 ? " rank" : " ranks") + " on " + std::to_string(info.hosts) +
                    (info.hosts == 1 ? " host\n" : " hosts\n");
  for (const auto& [k, v] : info.settings) out += "# " + k + ": " + v + "\n";
  std::string env;
  for (const auto& [k, v] : info.environment) env += " " + k + "=" + v;
  out +=
      "# environment:" + (env.empty() ? std::string(" (no QUORUM_*/HOROVOD_* set)") : env) + "\n";
  return out;
}

nlohmann::json sweep_json(const RunInfo& info, const SweepOptions& options,
                          const SweepResult& result) {
  nlohmann::json rows = nlohmann::json::array();
  for (const SweepRow& r : result.rows) {
    rows.push_back({{"op", std::string(collective_name(r.collective))},
                    {"dtype", std::string(dtype_name(options.dtype))},
                    {"bytes", r.bytes},
                    {"count", r.count},
                    {"reps", r.reps},
                    {"quorum",
                     {{"median_us", r.quorum_us.median},
                      {"min_us", r.quorum_us.min},
                      {"algbw_gbps", r.quorum_algbw},
                      {"busbw_gbps", r.quorum_busbw}}},
                    {"mpi",
                     {{"median_us", r.mpi_us.median},
                      {"min_us", r.mpi_us.min},
                      {"algbw_gbps", r.mpi_algbw},
                      {"busbw_gbps", r.mpi_busbw}}},
                    {"ratio_quorum_over_mpi",
                     r.mpi_us.median > 0 ? r.quorum_us.median / r.mpi_us.median : 0.0},
                    {"paired_ratio", r.paired},
                    {"wrong", r.wrong}});
  }
  return results_json(info, std::move(rows), result.wrong);
}

nlohmann::json algos_json(const RunInfo& info, const AlgosResult& result) {
  nlohmann::json rows = nlohmann::json::array();
  for (const AlgosRow& r : result.rows) {
    nlohmann::json settings;
    for (size_t s = 0; s < kAlgoSettings.size(); ++s) {
      settings[kAlgoSettings[s]] = {{"median_us", r.median_us[s]}, {"rounds_us", r.rounds_us[s]}};
    }
    rows.push_back({{"bytes", r.bytes},
                    {"settings", std::move(settings)},
                    {"best_fixed", kAlgoSettings[static_cast<size_t>(r.best_fixed)]},
                    {"auto_over_best", r.auto_ratio},
                    {"auto_plans",
                     {{"native", r.auto_plans[0]},
                      {"ring", r.auto_plans[1]},
                      {"tree", r.auto_plans[2]},
                      {"hierarchical", r.auto_plans[3]}}},
                    {"hierarchical_levels_us", {{"intra", r.intra_us}, {"inter", r.inter_us}}},
                    {"warmup", r.warmup},
                    {"wrong", r.wrong}});
  }
  return results_json(info, std::move(rows), result.wrong);
}

nlohmann::json train_json(const RunInfo& info, const Model& model, const TrainResult& r) {
  nlohmann::json variants = nlohmann::json::array();
  const double q = r.variants.empty() ? 0 : r.variants.front().step_ms;
  for (const VariantResult& v : r.variants) {
    variants.push_back({{"name", v.name},
                        {"step_ms", v.step_ms},
                        {"min_ms", v.min_ms},
                        {"backward_ms", v.backward_ms},
                        {"tail_ms", v.tail_ms},
                        {"ratio_quorum_over_this", v.step_ms > 0 ? q / v.step_ms : 0.0},
                        {"paired_ratio", v.paired}});
  }
  const QuorumPerStep& s = r.quorum;
  nlohmann::json j = info_json(info);
  j["model"] = {{"name", model.name},
                {"description", model.description},
                {"tensors", model.params.size()},
                {"parameters", model.total_numel()},
                {"bytes", model.total_numel() * 4}};
  j["compute"] = {{"units_per_ms", r.units_per_ms},
                  {"units_per_ms_min", r.units_min},
                  {"units_per_ms_max", r.units_max}};
  j["variants"] = std::move(variants);
  j["quorum_per_step"] = {{"plans", s.plans},
                          {"fast_plans", s.fast_plans},
                          {"fast_fallbacks", s.fast_fallbacks},
                          {"tensors", s.tensors},
                          {"fused_tensors", s.fused_tensors},
                          {"errors", s.errors},
                          {"payload_bytes", s.payload_bytes},
                          {"control_bytes_rank0", s.control_bytes},
                          {"control_bytes_all_ranks", s.control_bytes_all},
                          {"collective_ms_rank0", s.collective_ms},
                          {"negotiation_ms_per_tensor_rank0", s.negotiation_ms_per_tensor}};
  j["mpi_fused"] = {{"allreduce_ms", r.fused_allreduce_ms}, {"algbw_gbps", r.fused_algbw}};
  j["checked_tensors_per_step"] = r.checked_tensors;
  j["verified"] = r.wrong == 0;
  j["wrong"] = r.wrong;
  return j;
}

Status write_json(const std::string& path, const nlohmann::json& j) {
  std::ofstream out(path);
  out << j.dump(2) << "\n";
  out.close();
  if (!out)
    return Status(StatusCode::kInternal, path + ": could not write: " + std::strerror(errno));
  return Status::ok();
}

}  // namespace quorum::bench
