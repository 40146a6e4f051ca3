#!/usr/bin/env bash
# Installs the Debian 12 packages quorum needs, only those missing (idempotent; root or sudo).
set -euo pipefail
packages=(g++ pkg-config meson ninja-build mpich libmpich-dev libhwloc-dev libboost-dev
          libgtest-dev libgmock-dev libcli11-dev nlohmann-json3-dev
          libtorch-dev  # bindings/torch: ~30 s more build at -j2 (README, "libtorch and DDP")
          python3 clang libclang-rt-14-dev)  # clang + compiler-rt: libFuzzer (scripts/fuzz.sh)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
