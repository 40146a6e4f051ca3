#include "tools/trace/inputs.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <utility>

namespace quorum::trace {

namespace fs = std::filesystem;

std::vector<std::string> rank_files_for(const std::string& prefix) {
  const fs::path p(prefix);
  const fs::path name = p.filename();
  if (name.empty()) return {};
  // The writer inserts ".rank<R>" before the extension, or appends ".rank<R>.json".
  const std::string stem = (name.has_extension() ? name.stem() : name).string() + ".rank";
  const std::string ext = name.has_extension() ? name.extension().string() : ".json";

  std::map<int64_t, std::string> found;
  std::error_code ec;
  const fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string f = it->path().filename().string();
    if (f.size() <= stem.size() + ext.size() || !f.starts_with(stem) || !f.ends_with(ext)) {
      continue;
    }
    const std::string digits = f.substr(stem.size(), f.size() - stem.size() - ext.size());
    if (digits.size() > 9 || !std::all_of(digits.begin(), digits.end(),
                                          [](unsigned char c) { return std::isdigit(c); })) {
      continue;
    }
    // Keep the user's spelling of the directory ("trace.json" stays relative, no "./").
    found[std::stoll(digits)] = p.has_parent_path() ? (p.parent_path() / f).string() : f;
  }
  std::vector<std::string> out;
  for (auto& [rank, path] : found) out.push_back(std::move(path));
  return out;
}

Status expand_inputs(const std::vector<std::string>& args, std::vector<std::string>* paths) {
  paths->clear();
  for (const std::string& arg : args) {
    std::vector<std::string> ranks = rank_files_for(arg);
    if (!ranks.empty()) {
      paths->insert(paths->end(), ranks.begin(), ranks.end());
      continue;
    }
    std::error_code ec;
    if (!fs::exists(arg, ec)) {
      const fs::path name = fs::path(arg).filename();
      // "trace.rank3.json" names one file; only a prefix stands for a set.
      if (name.stem().string().find(".rank") != std::string::npos) {
        return Status(StatusCode::kInvalidArgument, arg + ": no such file");
      }
      const std::string pattern = (name.has_extension() ? name.stem() : name).string() +
                                  ".rank<R>" +
                                  (name.has_extension() ? name.extension().string() : ".json");
      return Status(StatusCode::kInvalidArgument,
                    arg + ": no such file, and no " + pattern + " files next to it");
    }
    paths->push_back(arg);
  }
  return Status::ok();
}

Status check_one_run(const std::vector<TraceFile>& traces) {
  if (traces.empty()) return Status::ok();
  const TraceFile& first = traces.front();
  std::map<int64_t, const TraceFile*> by_rank;
  for (const TraceFile& t : traces) {
    if (t.header.run_id != first.header.run_id) {
      return Status(StatusCode::kInvalidArgument, t.path + ": run_id \"" + t.header.run_id +
                                                      "\" differs from \"" + first.header.run_id +
                                                      "\" in " + first.path +
                                                      " (traces of different runs)");
    }
    if (t.header.size != first.header.size) {
      return Status(StatusCode::kInvalidArgument,
                    t.path + ": size " + std::to_string(t.header.size) + " differs from " +
                        std::to_string(first.header.size) + " in " + first.path);
    }
    auto [it, inserted] = by_rank.emplace(t.header.rank, &t);
    std::error_code ec;
    if (!inserted && fs::equivalent(t.path, it->second->path, ec)) {
      return Status(StatusCode::kInvalidArgument, t.path + ": given twice");
    }
    if (!inserted) {
      return Status(StatusCode::kInvalidArgument,
                    t.path + ": rank " + std::to_string(t.header.rank) + " is also in " +
                        it->second->path + " (two files for one rank)");
    }
  }
  return Status::ok();
}

Status load_run(const std::vector<std::string>& args, std::vector<TraceFile>* traces,
                RawEvents raw) {
  std::vector<std::string> paths;
  QUORUM_RETURN_IF_ERROR(expand_inputs(args, &paths));
  if (paths.empty()) return Status(StatusCode::kInvalidArgument, "no trace files given");
  traces->clear();
  traces->reserve(paths.size());
  for (const std::string& path : paths) {
    TraceFile t;
    QUORUM_RETURN_IF_ERROR(load_trace_file(path, &t, raw));
    traces->push_back(std::move(t));
  }
  QUORUM_RETURN_IF_ERROR(check_one_run(*traces));
  std::sort(traces->begin(), traces->end(),
            [](const TraceFile& a, const TraceFile& b) { return a.header.rank < b.header.rank; });
  return Status::ok();
}

}  // namespace quorum::trace
