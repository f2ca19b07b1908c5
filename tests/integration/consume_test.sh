#!/usr/bin/env bash
# Checks the ways another program can use weft: from the build tree, installed with pkg-config
# (shared and static libraries), installed with CMake (find_package), as a meson subproject, and
# across compilers: a program of the other compiler against this build's library, and this
# compiler's program against a library the other compiler built (docs/embedding.md). A program
# that bypasses the library's settings must fail to link, naming the setting.
# Usage: consume_test.sh SOURCE_DIR BUILD_DIR CXX
set -euo pipefail
src=$1 build=$2 cxx=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
example=$src/docs/examples/fan_out.cpp
version_example=$src/docs/examples/version.cpp

# The other compiler of the two weft supports (g++ 12, clang 19).
case "$("$cxx" --version | head -n 1)" in
  *clang*) other_cxx=g++ ;;
  *) other_cxx=clang++-19 ;;
esac
# 77: meson's "skipped" (tools/install-deps.sh installs both).
command -v "$other_cxx" >/dev/null || { echo "consume: skipped, $other_cxx is missing"; exit 77; }
command -v cmake >/dev/null || { echo "consume: skipped, cmake is missing"; exit 77; }

echo "== build tree"
# The library's flags, as the uninstalled pkg-config file gives them (settings included).
tree_flags=$(PKG_CONFIG_PATH=$build/meson-uninstalled pkg-config --cflags weft-uninstalled)
# shellcheck disable=SC2086
"$cxx" -std=c++20 $tree_flags "$example" "$build/runtime/libweft.a" -luring -pthread \
  -o "$tmp/from_tree"
"$tmp/from_tree"

echo "== installed, pkg-config, shared libraries"
meson install -C "$build" --destdir "$tmp/dest" --no-rebuild --quiet
pc_dir=$(dirname "$(find "$tmp/dest" -name weft.pc | head -1)")
lib_dir=$(dirname "$(find "$tmp/dest" -name 'libweft.so' | head -1)")
pc() { PKG_CONFIG_PATH=$pc_dir PKG_CONFIG_SYSROOT_DIR=$tmp/dest pkg-config "$@"; }
# shellcheck disable=SC2046
"$cxx" -std=c++20 "$version_example" $(pc --cflags --libs weft) -o "$tmp/shared_version"
LD_LIBRARY_PATH=$lib_dir "$tmp/shared_version"
if ldd "$tmp/shared_version" | grep -q "libweft.so.0"; then :; else
  echo "consume: the pkg-config program did not link libweft.so"; exit 1
fi
# shellcheck disable=SC2046
"$cxx" -std=c++20 "$example" $(pc --cflags --libs weft) -o "$tmp/from_pkgconfig"
LD_LIBRARY_PATH=$lib_dir "$tmp/from_pkgconfig"

echo "== installed, pkg-config, static libraries"
# shellcheck disable=SC2046
"$cxx" -std=c++20 "$src/docs/examples/flaky_dependency.cpp" $(pc --cflags weft-resilience) \
  "$lib_dir/libweft_resilience.a" "$lib_dir/libweft.a" -luring -pthread -o "$tmp/static_flaky"
"$tmp/static_flaky" >/dev/null

echo "== installed, CMake"
mkdir -p "$tmp/cmake_app"
cp "$example" "$version_example" "$src/docs/examples/flaky_dependency.cpp" \
  "$src/docs/examples/flow_pipeline.cpp" "$src/docs/examples/event_processor.cpp" \
  "$tmp/cmake_app/"
cat > "$tmp/cmake_app/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.18)
project(uses_weft CXX)
find_package(weft 0.1 CONFIG REQUIRED COMPONENTS net resilience http flow)
add_executable(fan_out fan_out.cpp)
target_link_libraries(fan_out PRIVATE weft::weft)
add_executable(version version.cpp)
target_link_libraries(version PRIVATE weft::weft)
add_executable(flaky flaky_dependency.cpp)
target_link_libraries(flaky PRIVATE weft::resilience)
add_executable(flow flow_pipeline.cpp)
target_link_libraries(flow PRIVATE weft::flow)
add_executable(events event_processor.cpp)
target_link_libraries(events PRIVATE weft::flow)
CMAKE
prefix=$(dirname "$(dirname "$(find "$tmp/dest" -name weftConfig.cmake | head -1)")")
cmake -S "$tmp/cmake_app" -B "$tmp/cmake_app/b" -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$tmp/cmake_app/b" >/dev/null
"$tmp/cmake_app/b/fan_out"
"$tmp/cmake_app/b/version"
"$tmp/cmake_app/b/flaky" >/dev/null
"$tmp/cmake_app/b/flow" >/dev/null
"$tmp/cmake_app/b/events" >/dev/null
# The static libraries through the same package.
cmake -S "$tmp/cmake_app" -B "$tmp/cmake_app/s" -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_PREFIX_PATH="$prefix" -DWEFT_USE_STATIC_LIBS=ON >/dev/null
cmake --build "$tmp/cmake_app/s" >/dev/null
if ldd "$tmp/cmake_app/s/fan_out" | grep -q libweft; then
  echo "consume: WEFT_USE_STATIC_LIBS still linked a shared libweft"; exit 1
fi
"$tmp/cmake_app/s/fan_out"
"$tmp/cmake_app/s/events" >/dev/null  # weft::flow's static library brings resilience's

echo "== meson subproject"
mkdir -p "$tmp/app/subprojects/weft"
cp -r "$src/meson.build" "$src/meson_options.txt" "$src/runtime" "$src/resilience" "$src/net" \
  "$src/http" "$src/flow" "$src/packaging" \
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
   -Dweft:tools=false >/dev/null && ninja -C b fan_out flaky >/dev/null)
"$tmp/app/b/fan_out"
"$tmp/app/b/flaky" >/dev/null

echo "== a $other_cxx program against this build's library ($cxx)"
# shellcheck disable=SC2046
"$other_cxx" -std=c++20 "$example" $(pc --cflags weft) "$lib_dir/libweft.a" -luring -pthread \
  -o "$tmp/other_program"
"$tmp/other_program"

echo "== a $cxx program against a library $other_cxx built"
CXX=$other_cxx meson setup "$tmp/other_lib" "$src" -Dtests=false -Dtools=false \
  -Dbenchmarks=false -Ddefault_library=static >/dev/null
ninja -C "$tmp/other_lib" runtime/libweft.a >/dev/null
other_pc=$tmp/other_lib/meson-uninstalled
# shellcheck disable=SC2046
"$cxx" -std=c++20 "$example" $(PKG_CONFIG_PATH=$other_pc pkg-config --cflags weft-uninstalled) \
  "$tmp/other_lib/runtime/libweft.a" -luring -pthread -o "$tmp/program_other_lib"
"$tmp/program_other_lib"

echo "== a program built with other settings than its library: a link error naming them"
theirs=$(pc --cflags weft | grep -o 'WEFT_SYMMETRIC_TRANSFER=[01]' | cut -d= -f2)
wrong=$((1 - theirs))
# shellcheck disable=SC2086
if "$cxx" -std=c++20 $tree_flags -UWEFT_SYMMETRIC_TRANSFER -DWEFT_SYMMETRIC_TRANSFER=$wrong \
     "$example" "$build/runtime/libweft.a" -luring -pthread -o "$tmp/mismatch" \
     2>"$tmp/mismatch.log"; then
  echo "consume: a program with WEFT_SYMMETRIC_TRANSFER=$wrong linked against a library built with $theirs"
  exit 1
fi
grep -q "abi_symmetric_transfer_$wrong" "$tmp/mismatch.log" || {
  echo "consume: the link error does not name the setting:"; cat "$tmp/mismatch.log"; exit 1; }
echo "every way works"
