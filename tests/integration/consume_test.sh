#!/usr/bin/env bash
# Checks the three ways another program can use weft: from the build tree, installed with
# pkg-config, and as a meson subproject. Each builds and runs docs/examples/fan_out.cpp.
# Usage: consume_test.sh SOURCE_DIR BUILD_DIR CXX
set -euo pipefail
src=$1 build=$2 cxx=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
example=$src/docs/examples/fan_out.cpp

echo "== build tree"
"$cxx" -std=c++20 -I"$src/runtime/include" "$example" "$build/runtime/libweft.a" -luring -pthread \
  -o "$tmp/from_tree"
"$tmp/from_tree"

echo "== installed, pkg-config"
meson install -C "$build" --destdir "$tmp/dest" --no-rebuild --quiet
pc_dir=$(dirname "$(find "$tmp/dest" -name weft.pc | head -1)")
flags=$(PKG_CONFIG_PATH=$pc_dir PKG_CONFIG_SYSROOT_DIR=$tmp/dest pkg-config --cflags --libs weft)
# shellcheck disable=SC2086
"$cxx" -std=c++20 "$example" $flags -o "$tmp/from_pkgconfig"
"$tmp/from_pkgconfig"

echo "== meson subproject"
mkdir -p "$tmp/app/subprojects/weft"
cp -r "$src/meson.build" "$src/meson_options.txt" "$src/runtime" "$src/resilience" "$src/net" \
  "$src/http" \
  "$tmp/app/subprojects/weft/"
cp "$example" "$src/docs/examples/flaky_dependency.cpp" "$tmp/app/"
cat > "$tmp/app/meson.build" <<'MESON'
project('uses_weft', 'cpp', default_options: ['cpp_std=c++20'])
weft_dep = dependency('weft', fallback: ['weft', 'weft_dep'])
executable('fan_out', 'fan_out.cpp', dependencies: weft_dep)
resilience_dep = dependency('weft-resilience', fallback: ['weft', 'weft_resilience_dep'])
executable('flaky', 'flaky_dependency.cpp', dependencies: resilience_dep)
MESON
(cd "$tmp/app" && CXX=$cxx meson setup b -Dweft:tests=false -Dweft:benchmarks=false \
   -Dweft:tools=false >/dev/null && ninja -C b >/dev/null)
"$tmp/app/b/fan_out"
"$tmp/app/b/flaky" >/dev/null
echo "all three ways work"
