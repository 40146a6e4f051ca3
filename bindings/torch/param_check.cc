#include "bindings/torch/param_check.h"

#include <algorithm>
#include <charconv>

#include "quorum/quorum.h"

namespace quorum::torch_binding {
namespace {

// Fields are separated by US (0x1f), records by '\n'; names cannot break the framing because
// control characters in them are replaced when encoding.
constexpr char kField = '\x1f';

std::string clean(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20) c = '?';
  }
  return out;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == sep) {
      out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  return out;
}

bool parse_int(std::string_view s, int64_t* v) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
  return ec == std::errc() && p == s.data() + s.size();
}

// "0,2,5": the numbers of `v`, comma-separated.
template <typename T>
std::string join(const std::vector<T>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(v[i]);
  }
  return s;
}

std::string rank_list(const std::vector<int>& ranks) {
  std::string s = ranks.size() == 1 ? "rank " : "ranks ";
  return s + join(ranks);
}

// "shape [64,16] on ranks 0,2 but [64,17] on rank 1": values grouped in order of first rank.
std::string disagreement(const std::string& field,
                         const std::vector<std::pair<std::string, int>>& values) {
  std::vector<std::pair<std::string, std::vector<int>>> groups;
  for (const auto& [value, rank] : values) {
    auto it = std::find_if(groups.begin(), groups.end(), [&](auto& g) { return g.first == value; });
    if (it == groups.end()) {
      groups.push_back({value, {rank}});
    } else {
      it->second.push_back(rank);
    }
  }
  std::string s = field + " ";
  for (size_t i = 0; i < groups.size(); ++i) {
    if (i) s += i + 1 == groups.size() ? " but " : ", ";
    s += groups[i].first + " on " + rank_list(groups[i].second);
  }
  return s;
}

// "what: message", the form of every error here.
Status failure(StatusCode code, std::string_view what, const std::string& message) {
  return Status(code, std::string(what) + ": " + message);
}

Status mismatch(std::string_view what, const std::string& message) {
  return failure(StatusCode::kMismatch, what, message);
}

// Every rank's `t` (its first dimensions may differ), gathered under `name` into `out` (a vector
// or string of t's element type), sized to fit.
template <typename Buffer>
Status gather_into(const std::string& name, const Tensor& t, Buffer* out) {
  return wait(enqueue_allgather(name, t, [out](const std::vector<int64_t>& s) {
    out->resize(static_cast<size_t>(s[0]));
    return static_cast<void*>(out->data());
  }));
}

}  // namespace

std::string subject(const std::string& name, size_t index) {
  return "parameter '" + name + "' (#" + std::to_string(index) + ")";
}

std::string shape_string(const std::vector<int64_t>& shape) {
  // Appended, not "[" + join(): GCC 12 warns (-Wrestrict) about operator+(const char*, string&&).
  std::string s = "[";
  s += join(shape);
  return s + "]";
}

std::string encode(const ParamList& list) {
  std::string out = std::to_string(list.params.size()) + kField + clean(list.settings) + "\n";
  for (const ParamDesc& p : list.params) {
    out += clean(p.name) + kField + clean(p.dtype) + kField + clean(p.device) + kField;
    out += join(p.shape) + kField;
    out += p.requires_grad ? '1' : '0';
    out += kField + clean(p.problem) + "\n";
  }
  return out;
}

Status decode(std::string_view bytes, ParamList* list) {
  const Status bad(StatusCode::kInternal, "parameter list exchange: malformed record");
  std::vector<std::string_view> lines = split(bytes, '\n');
  if (lines.size() < 2 || !lines.back().empty()) return bad;
  std::vector<std::string_view> head = split(lines[0], kField);
  int64_t count = 0;
  if (head.size() != 2 || !parse_int(head[0], &count) || count < 0 ||
      static_cast<size_t>(count) != lines.size() - 2) {
    return bad;
  }
  list->settings = std::string(head[1]);
  std::vector<ParamDesc>* params = &list->params;
  params->clear();
  for (size_t i = 1; i + 1 < lines.size(); ++i) {
    std::vector<std::string_view> f = split(lines[i], kField);
    if (f.size() != 6 || (f[4] != "0" && f[4] != "1")) return bad;
    ParamDesc p{std::string(f[0]), std::string(f[1]), std::string(f[2]), {},
                f[4] == "1",       std::string(f[5])};
    if (!f[3].empty()) {
      for (std::string_view d : split(f[3], ',')) {
        int64_t v = 0;
        if (!parse_int(d, &v)) return bad;
        p.shape.push_back(v);
      }
    }
    params->push_back(std::move(p));
  }
  return Status::ok();
}

Status compare(const std::vector<ParamList>& lists, std::string_view what) {
  // 0. The call's other arguments.
  std::vector<std::pair<std::string, int>> settings;
  for (size_t r = 0; r < lists.size(); ++r)
    settings.push_back({lists[r].settings, static_cast<int>(r)});
  for (const auto& s : settings) {
    if (s.first != settings[0].first) {
      return mismatch(what,
                      "ranks disagree about the call: " + disagreement("called with", settings));
    }
  }
  std::vector<std::vector<ParamDesc>> per_rank;
  for (const ParamList& l : lists) per_rank.push_back(l.params);
  // 1. Something a rank cannot use at all: the first one, by rank then index.
  for (size_t r = 0; r < per_rank.size(); ++r) {
    for (size_t i = 0; i < per_rank[r].size(); ++i) {
      const ParamDesc& p = per_rank[r][i];
      if (!p.problem.empty()) {
        // Name the ranks with the same problem there, unless that is every rank.
        std::vector<int> ranks;
        for (size_t q = 0; q < per_rank.size(); ++q) {
          if (i < per_rank[q].size() && per_rank[q][i].problem == p.problem)
            ranks.push_back(static_cast<int>(q));
        }
        std::string where = ranks.size() < per_rank.size() ? " on " + rank_list(ranks) : "";
        return failure(StatusCode::kInvalidArgument, what,
                       subject(p.name, i) + where + ": " + p.problem);
      }
    }
  }
  if (per_rank.size() < 2) return Status::ok();
  // 2. Different lengths: say how many where, and name the first parameter some rank lacks.
  size_t shortest = per_rank[0].size();
  std::vector<std::pair<std::string, int>> counts;
  for (size_t r = 0; r < per_rank.size(); ++r) {
    counts.push_back({std::to_string(per_rank[r].size()), static_cast<int>(r)});
    shortest = std::min(shortest, per_rank[r].size());
  }
  // 3. Index by index: name, dtype, shape, requires_grad, device kind.
  for (size_t i = 0; i < shortest; ++i) {
    const ParamDesc& p0 = per_rank[0][i];
    std::vector<std::pair<std::string, int>> names, dtypes, shapes, grads;
    for (size_t r = 0; r < per_rank.size(); ++r) {
      const ParamDesc& p = per_rank[r][i];
      int rank = static_cast<int>(r);
      names.push_back({"'" + p.name + "'", rank});
      dtypes.push_back({p.dtype, rank});
      shapes.push_back({shape_string(p.shape), rank});
      grads.push_back({p.requires_grad ? "true" : "false", rank});
    }
    auto differs = [](const auto& v) {
      return std::any_of(v.begin(), v.end(), [&](auto& x) { return x.first != v[0].first; });
    };
    std::string at = "parameter #" + std::to_string(i);
    if (differs(names)) return mismatch(what, at + ": " + disagreement("named", names));
    if (differs(dtypes))
      return mismatch(what, subject(p0.name, i) + ": " + disagreement("dtype", dtypes));
    if (differs(shapes))
      return mismatch(what, subject(p0.name, i) + ": " + disagreement("shape", shapes));
    if (differs(grads)) {
      return mismatch(what, subject(p0.name, i) + ": " + disagreement("requires_grad", grads));
    }
  }
  for (size_t r = 0; r < per_rank.size(); ++r) {
    if (per_rank[r].size() != shortest) {
      const ParamDesc& extra = per_rank[r][shortest];
      return mismatch(
          what, "parameter lists differ across ranks: " + disagreement("count", counts) +
                    "; the first parameter not on "
                    "every rank is " +
                    subject(extra.name, shortest) + " " + shape_string(extra.shape) + " on rank " +
                    std::to_string(r));
    }
  }
  return Status::ok();
}

Status check_across_ranks(const ParamList& mine, const std::string& tag, std::string_view what) {
  const int size = quorum::size();
  if (size < 1) return failure(StatusCode::kFailedPrecondition, what, "quorum is not initialised");
  std::string bytes = encode(mine);
  // Every rank's byte count, then every rank's bytes (allgather allows a per-rank first dim).
  int64_t my_length = static_cast<int64_t>(bytes.size());
  std::vector<int64_t> lengths;
  Tensor len{&my_length, DataType::kI64, {1}, Device::host()};
  QUORUM_RETURN_IF_ERROR(gather_into(tag + ".lengths", len, &lengths));
  std::string all;
  Tensor mine_t{bytes.data(), DataType::kU8, {my_length}, Device::host()};
  QUORUM_RETURN_IF_ERROR(gather_into(tag + ".table", mine_t, &all));
  if (lengths.size() != static_cast<size_t>(size)) {
    return failure(StatusCode::kInternal, what, "parameter list exchange lost ranks");
  }
  std::vector<ParamList> per_rank(lengths.size());
  size_t offset = 0;
  for (size_t r = 0; r < lengths.size(); ++r) {
    auto n = static_cast<size_t>(lengths[r]);
    if (offset + n > all.size()) return failure(StatusCode::kInternal, what, "short exchange");
    QUORUM_RETURN_IF_ERROR(decode(std::string_view(all).substr(offset, n), &per_rank[r]));
    offset += n;
  }
  return compare(per_rank, what);
}

}  // namespace quorum::torch_binding
