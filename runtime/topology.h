// The machine's shape as hwloc sees it, and pinning of the calling thread to a core.
// Construct once at init; methods are safe from any thread (hwloc topologies are read-only
// after load).
#pragma once

#include <memory>
#include <string>

#include "quorum/types.h"

struct hwloc_topology;

namespace quorum {

class Topology {
 public:
  static Status load(std::unique_ptr<Topology>* out);
  ~Topology();

  int cores() const { return cores_; }
  int processing_units() const { return pus_; }
  int numa_nodes() const { return numa_; }
  std::string summary() const;

  // Binds the calling thread to core `index` (hwloc logical index).
  Status pin_current_thread(int index) const;

 private:
  Topology() = default;
  hwloc_topology* topo_ = nullptr;
  int cores_ = 0, pus_ = 0, numa_ = 0;
};

}  // namespace quorum
