#!/usr/bin/env bash
# `meson install` into a temporary DESTDIR, then build tests/install/consumer.c (C, pkg-config
# quorum_c) and consumer.cc (C++20, pkg-config quorum) against the installed files alone and run
# both under mpiexec -n 2. Also checks what was installed (headers, pkg-config files, tools) and
# that libquorum_c exports only quorum_* and libquorum's quorum:: symbols are only the public API.
# Usage: install_consumer.sh MPIEXEC MESON BUILD_DIR SOURCE_DIR
set -euo pipefail
mpiexec=$1 meson=$2 build=$3 src=$4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/dest

"$meson" install -C "$build" --no-rebuild --quiet --destdir "$dest" >"$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log"; echo "meson install failed"; exit 1; }

# The .pc files say prefix=/usr/local (or whatever was configured); the sysroot maps that into
# the DESTDIR, exactly as it would for a packaged staging tree.
pcdir=$(dirname "$(find "$dest" -name quorum.pc -print -quit)")
[ -f "$pcdir/quorum.pc" ] && [ -f "$pcdir/quorum_c.pc" ] || { echo "no quorum.pc / quorum_c.pc installed"; exit 1; }
export PKG_CONFIG_PATH=$pcdir PKG_CONFIG_LIBDIR=$pcdir PKG_CONFIG_SYSROOT_DIR=$dest
libdir=$dest$(pkg-config --variable=libdir quorum | sed "s|^$dest||")
incdir=$dest$(pkg-config --variable=includedir quorum | sed "s|^$dest||")
bindir=$(dirname "$incdir")/bin
for f in quorum/quorum.h quorum/types.h quorum/quorum_c.h; do
  [ -f "$incdir/$f" ] || { echo "missing installed header $f"; exit 1; }
done
for t in quorum-demo quorum-info quorum-bench quorum-trace; do  # quorum-torch-example: optional
  [ -x "$bindir/$t" ] || { echo "missing installed tool $t"; exit 1; }
done
case "$(pkg-config --cflags quorum_c)" in
  *"$dest"*) ;;
  *) echo "pkg-config does not point into the install: $(pkg-config --cflags quorum_c)"; exit 1 ;;
esac

# Exported symbols: the C ABI exactly; from libquorum, no quorum:: symbol outside quorum.h.
extra=$(nm -D --defined-only "$libdir/libquorum_c.so" | awk '{print $3}' | grep -v '^quorum_' || true)
[ -z "$extra" ] || { echo "libquorum_c exports more than quorum_*:"; echo "$extra"; exit 1; }
public=$(grep -o 'QUORUM_EXPORT [^(]*(' "$incdir/quorum/quorum.h" | sed 's/($//; s/.*[ *&]//' | sort -u | paste -sd'|')
internal=$(nm -DC --defined-only "$libdir/libquorum.so" | cut -d' ' -f3- | grep '^quorum::' |
           grep -Ev "^quorum::($public)\(" || true)
[ -z "$internal" ] || { echo "libquorum exports internal quorum symbols:"; echo "$internal"; exit 1; }
if [ -e "$libdir/libquorum_torch.so" ]; then  # built when libtorch was found
  [ -f "$incdir/quorum/torch.h" ] || { echo "libquorum_torch installed without quorum/torch.h"; exit 1; }
  extra=$(nm -DC --defined-only "$libdir/libquorum_torch.so" | cut -d' ' -f3- |
          grep -Ev '^(quorum::torch::|(typeinfo|typeinfo name|vtable) for quorum::torch::)' || true)
  [ -z "$extra" ] || { echo "libquorum_torch exports more than quorum::torch:"; echo "$extra"; exit 1; }
fi
others=$(nm -DC --defined-only "$libdir/libquorum.so" | cut -d' ' -f3- | grep -vc '^quorum::' || true)
[ "$others" -eq 0 ] || echo "note: libquorum also exports $others non-quorum symbols (Boost/libstdc++ inline statics)"

cd "$tmp"
cc -std=c99 -Wall -Werror "$src/tests/install/consumer.c" $(pkg-config --cflags --libs quorum_c) -o consumer_c
c++ -std=c++20 -Wall -Werror "$src/tests/install/consumer.cc" $(pkg-config --cflags --libs quorum) -o consumer_cpp
# Installed libraries carry no RUNPATH; a prefix outside the loader's paths needs
# LD_LIBRARY_PATH (or ldconfig), as for any library. Nothing may come from the build tree.
export LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# Into a file first: `ldd | grep -q` fails under pipefail when grep exits before ldd has
# written everything (SIGPIPE), which a long dependency list (CUDA, NCCL) makes likely.
ldd ./consumer_c >ldd.txt
grep -q "$libdir/libquorum_c.so" ldd.txt || { cat ldd.txt; echo "wrong libquorum_c"; exit 1; }
grep -q "$libdir/libquorum.so" ldd.txt || { cat ldd.txt; echo "wrong libquorum"; exit 1; }

out=$("$mpiexec" -n 2 ./consumer_c) || { echo "$out"; echo "C consumer failed"; exit 1; }
echo "$out"
[ "$(grep -c ': ok$' <<<"$out")" -eq 2 ] || { echo "C consumer: not every rank ok"; exit 1; }
out=$("$mpiexec" -n 2 ./consumer_cpp) || { echo "$out"; echo "C++ consumer failed"; exit 1; }
echo "$out"
[ "$(grep -c ': ok$' <<<"$out")" -eq 2 ] || { echo "C++ consumer: not every rank ok"; exit 1; }
"$bindir/quorum-demo" --help >/dev/null || { echo "installed quorum-demo does not run"; exit 1; }
echo "install: headers, quorum.pc, quorum_c.pc, 4 tools; C and C++ consumers built from the install pass on 2 ranks"
