# The emulated hosts' network, shared by scripts/hosts.sh, scripts/host-exec.sh and
# tests/emulated_hosts.sh (sourced): host hI lives in namespace quorum-hI at $PREFIX.(I+1), and
# every namespace routes through the bridge's address $GATEWAY.
readonly PREFIX=10.213.0
readonly BRIDGE=qbr0
readonly GATEWAY=$PREFIX.254
ns_of() { echo "quorum-$1"; }
addr_of() { echo "$PREFIX.$(( ${1#h} + 1 ))"; }
