#!/usr/bin/env bash
# The README documents every knob the registry declares.
set -euo pipefail
info=$1 readme=$2
missing=0
for k in $("$info" --names); do
  grep -q "\`$k\`" "$readme" || { echo "README.md does not document $k"; missing=1; }
done
[ $missing -eq 0 ] && echo "README documents all $("$info" --names | wc -l) knobs"
exit $missing
