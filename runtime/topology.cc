#include "runtime/topology.h"

#include <hwloc.h>

namespace quorum {

Status Topology::load(std::unique_ptr<Topology>* out) {
  std::unique_ptr<Topology> t(new Topology());
  if (hwloc_topology_init(&t->topo_) != 0 || hwloc_topology_load(t->topo_) != 0) {
    return Status(StatusCode::kInternal, "hwloc could not load the machine topology");
  }
  t->cores_ = hwloc_get_nbobjs_by_type(t->topo_, HWLOC_OBJ_CORE);
  t->pus_ = hwloc_get_nbobjs_by_type(t->topo_, HWLOC_OBJ_PU);
  t->numa_ = hwloc_get_nbobjs_by_type(t->topo_, HWLOC_OBJ_NUMANODE);
  *out = std::move(t);
  return Status::ok();
}

Topology::~Topology() {
  if (topo_) hwloc_topology_destroy(topo_);
}

std::string Topology::summary() const {
  return std::to_string(numa_) + " NUMA node(s), " + std::to_string(cores_) + " core(s), " +
         std::to_string(pus_) + " hardware thread(s)";
}

Status Topology::pin_current_thread(int index) const {
  hwloc_obj_t core = hwloc_get_obj_by_type(topo_, HWLOC_OBJ_CORE, static_cast<unsigned>(index));
  if (!core) {
    return Status(StatusCode::kInvalidArgument,
                  "QUORUM_THREAD_AFFINITY=" + std::to_string(index) + " names no core (this "
                  "machine has " + std::to_string(cores_) + ")");
  }
  if (hwloc_set_cpubind(topo_, core->cpuset, HWLOC_CPUBIND_THREAD) != 0) {
    return Status(StatusCode::kInternal,
                  "could not pin the engine thread to core " + std::to_string(index));
  }
  return Status::ok();
}

}  // namespace quorum
