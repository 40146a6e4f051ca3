#!/usr/bin/env bash
# The main job: install what is missing, build, and train the demo MLP on 4 ranks.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
mpiexec -n "${RANKS:-4}" build/tools/quorum-demo "$@"
