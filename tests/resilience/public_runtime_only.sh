#!/bin/sh
# The resilience module is built on the runtime's public API alone (docs/resilience.md, "Built
# on the runtime's public seam"): no runtime header from weft/detail/ and no weft::detail name.
# A change to the runtime's internals then cannot silently break the layers.
set -eu
root="$1"
found=$(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]weft/([A-Za-z0-9_]+/)*detail/|weft::detail\b' \
  "$root/resilience" | grep -vE '[<"]weft/resilience/detail/' || true)
if [ -n "$found" ]; then
  echo "$found"
  echo "FAIL: resilience/ reaches into the runtime's internals (above); use or extend the public seam" >&2
  exit 1
fi
echo "resilience/ includes only the runtime's public headers"
