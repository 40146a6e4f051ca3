// quorum-info: every knob with its value and where the value came from, the build's features
// and the machine's topology. Runs without mpiexec (it does not start the runtime).
#include <cstdio>
#include <memory>

#include "runtime/config.h"
#include "runtime/topology.h"

#ifndef QUORUM_HAS_NCCL
#define QUORUM_HAS_NCCL 0
#endif

int main() {
  std::vector<quorum::KnobSetting> settings;
  quorum::Config config;
  quorum::Status s = quorum::load_config(quorum::process_env(), &config, &settings);
  std::printf("quorum %s\n\nfeatures:\n", QUORUM_VERSION);
  std::printf("  MPI (host tensors)      yes (MPICH %s)\n", QUORUM_MPI_VERSION);
  std::printf("  NCCL/CUDA (GPU tensors) %s\n",
              QUORUM_HAS_NCCL ? "detected at build time; backend not built yet" : "no");
  std::printf("  libtorch binding        no\n\nknobs:\n");
  for (const auto& k : settings) {
    std::printf("  %-28s = %-10s  [%s]\n      %s\n      %s in %s%s%s\n", k.spec->name, k.value.c_str(),
                k.source.c_str(), k.spec->description, k.spec->type, k.spec->range,
                k.spec->alias ? "; alias " : "", k.spec->alias ? k.spec->alias : "");
  }
  if (!s.is_ok()) std::printf("\nconfiguration error: %s\n", s.message().c_str());
  std::unique_ptr<quorum::Topology> topo;
  quorum::Status t = quorum::Topology::load(&topo);
  std::printf("\ntopology: %s\n", t.is_ok() ? topo->summary().c_str() : t.message().c_str());
  return s.is_ok() ? 0 : 1;
}
