// Cross-rank agreement on a parameter list, for the libtorch binding. The pure part (encode,
// decode, compare) takes no torch and no MPI, so unit tests drive it directly; check_across_ranks
// exchanges the lists with two allgathers through the public quorum API.
//
// Why a check of its own: the coordinator validates each tensor name it sees on every rank, but a
// parameter that exists on one rank and not another never meets its partner, so it would stall
// rather than fail. Exchanging the whole list first turns every such difference into the same
// clear error on every rank.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "quorum/types.h"

namespace quorum::torch_binding {

// One parameter as this rank sees it. `problem` is non-empty when this rank cannot use it
// (unsupported dtype, CUDA, non-contiguous, ...); it is shared so every rank can name it.
struct ParamDesc {
  std::string name;    // the user's name ("fc1.weight") or "param.<index>"
  std::string dtype;   // quorum's name (f32) when supported, else libtorch's (Bool)
  std::string device;  // "cpu", "cuda:0"
  std::vector<int64_t> shape;
  bool requires_grad = true;
  std::string problem;
  bool operator==(const ParamDesc&) const = default;
};

// What one rank passes to a collective call: its parameters, and the call's other arguments as
// text ("root 0"), which must agree too.
struct ParamList {
  std::string settings;
  std::vector<ParamDesc> params;
  bool operator==(const ParamList&) const = default;
};

std::string encode(const ParamList& list);
// Inverse of encode(); an error for bytes encode() cannot have produced.
Status decode(std::string_view bytes, ParamList* list);

// "[64,16]"
std::string shape_string(const std::vector<int64_t>& shape);
// "parameter 'fc.weight' (#3)": how every message names a parameter.
std::string subject(const std::string& name, size_t index);

// Compares every rank's list (per_rank[r] is rank r's). OK when all ranks agree on the
// settings, can use their parameters and agree on count, names, dtypes, shapes and
// requires_grad; otherwise the first difference, as a message that starts with `what` and names
// the parameter and the ranks, e.g.
//   "broadcast_parameters: parameter 'fc2.weight' (#2): shape [64,16] on ranks 0,2 but [64,17]
//    on rank 1". The result is the same on every rank given the same input.
Status compare(const std::vector<ParamList>& per_rank, std::string_view what);

// Collective: every rank calls it with its own list and the same `tag` (unique per call, the
// same on every rank: it names the two allgathers). Returns compare()'s verdict, or the
// runtime's error if the exchange itself failed.
Status check_across_ranks(const ParamList& mine, const std::string& tag, std::string_view what);

}  // namespace quorum::torch_binding
