#!/usr/bin/env bash
# A compile-fail test: the file must NOT compile, and the compiler's output must contain the
# message its `// expect:` line names (a static_assert's or a [[nodiscard]]'s text), so a misuse
# stays a build error that says what to write instead.
# Usage: check.sh FILE COMPILER [ARGS...]
set -uo pipefail
file=$1
shift
expect=$(sed -n 's|^// expect: ||p' "$file")
if [ -z "$expect" ]; then
  echo "compile_fail: $file has no '// expect:' line" >&2
  exit 2
fi
out=$("$@" -std=c++20 -fsyntax-only -Wall -Wextra -Werror -x c++ "$file" 2>&1)
rc=$?
if [ $rc -eq 0 ]; then
  echo "compile_fail: $file compiled, but it must not" >&2
  exit 1
fi
if ! grep -qF -- "$expect" <<<"$out"; then
  echo "compile_fail: $file failed to compile, but without the message: $expect" >&2
  echo "--- compiler output ---" >&2
  echo "$out" | head -40 >&2
  exit 1
fi
first=$(grep -m1 -E 'error' <<<"$out")
echo "ok: $(basename "$file"): $first"
