// quorum-info: every knob with its value and where the value came from, the build's features
// and the machine's topology. Runs without mpiexec (it does not start the runtime).
#include <cstdio>
#include <memory>
#include <string>

#include "runtime/config.h"
#include "runtime/topology.h"

#ifndef QUORUM_HAS_NCCL
#define QUORUM_HAS_NCCL 0
#endif
#ifndef QUORUM_HAS_TORCH
#define QUORUM_HAS_TORCH 0
#endif

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "--markdown") {
    // The README's knob table, straight from the registry.
    std::printf("| variable | default | accepted | meaning |\n|---|---|---|---|\n");
    for (const quorum::KnobSpec& k : quorum::knobs()) {
      std::string name = std::string("`") + k.name + "`";
      if (k.alias) name += std::string(" (alias `") + k.alias + "`)";
      auto cell = [](std::string text) {  // a '|' would end the cell
        for (size_t i = text.find('|'); i != std::string::npos; i = text.find('|', i + 2)) {
          text.replace(i, 1, "\\|");
        }
        return text;
      };
      std::printf("| %s | `%s` | %s: %s | %s |\n", name.c_str(), k.default_value, k.type,
                  cell(k.range).c_str(), cell(k.description).c_str());
    }
    return 0;
  }
  if (argc > 1 && std::string(argv[1]) == "--names") {
    for (const quorum::KnobSpec& k : quorum::knobs()) std::printf("%s\n", k.name);
    return 0;
  }
  std::vector<quorum::KnobSetting> settings;
  quorum::Config config;
  quorum::Status s = quorum::load_config(quorum::process_env(), &config, &settings);
  std::printf("quorum %s\n\nfeatures:\n", QUORUM_VERSION);
  std::printf("  MPI (host tensors)      yes (MPICH %s)\n", QUORUM_MPI_VERSION);
  std::printf("  NCCL/CUDA (GPU tensors) %s\n", QUORUM_HAS_NCCL ? "built" : "no");
  std::printf("  libtorch binding        %s\n\nknobs:\n", QUORUM_HAS_TORCH ? "built" : "no");
  int invalid = 0;
  for (const auto& k : settings) {
    // An unacceptable value is flagged on its own line, where the eye lands, not only at the end.
    invalid += !k.valid;
    std::printf("%s %-28s = %-10s  [%s]%s\n      %s\n      %s in %s%s%s\n", k.valid ? " " : "!",
                k.spec->name, k.value.c_str(), k.source.c_str(),
                k.valid ? "" : "  <-- INVALID", k.spec->description, k.spec->type,
                k.spec->range, k.spec->alias ? "; alias " : "", k.spec->alias ? k.spec->alias : "");
  }
  if (invalid > 0) std::printf("\n%d knob%s marked ! above %s invalid\n", invalid,
                               invalid == 1 ? "" : "s", invalid == 1 ? "is" : "are");
  if (!s.is_ok()) std::printf("\nconfiguration error: %s\n", s.message().c_str());
  std::unique_ptr<quorum::Topology> topo;
  quorum::Status t = quorum::Topology::load(&topo);
  std::printf("\ntopology: %s\n", t.is_ok() ? topo->summary().c_str() : t.message().c_str());
  return s.is_ok() ? 0 : 1;
}
