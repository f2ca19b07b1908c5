#!/usr/bin/env bash
# Installs what weft needs to build and test on Debian 12, from Debian's packages only.
# Idempotent: installs only what is missing. Needs root (or sudo) when something is missing.
set -euo pipefail

# chromium: the weft-gateway report is checked in a real (headless) browser; without it that one
# test skips and says so. libcli11-dev (header-only): the tools' command lines.
packages=(g++ meson ninja-build pkg-config cmake liburing-dev libgtest-dev libgmock-dev
          libbenchmark-dev clang-19 libclang-rt-19-dev chromium libcli11-dev)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "weft: installing ${missing[*]}" >&2
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
