#!/usr/bin/env bash
# Loads a weft-gateway report in headless Chromium: the page's own script must have run without
# errors and found every chart plotted (the unit test reads the HTML; only a browser shows that
# the SVG and the script actually work), then a screenshot is taken for the README.
# Usage: report_browser_test.sh REPORT.html|REPORT_MAKER SCREENSHOT.png
#   REPORT_MAKER: a program that writes a report to the path given as its argument
#   (gateway_report_sample).
# Exits 77 (meson's "skipped") when Chromium is not installed.
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 REPORT.html|REPORT_MAKER SCREENSHOT.png" >&2
  exit 2
fi
source=$1 screenshot=$2

browser=
for candidate in chromium chromium-browser; do
  if command -v "$candidate" >/dev/null 2>&1; then
    browser=$(command -v "$candidate")
    break
  fi
done
if [[ -z $browser ]]; then
  echo "SKIP: chromium is not installed (apt-get install chromium)"
  exit 77
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

if [[ $source == *.html ]]; then
  [[ -f $source ]] || fail "no report at $source"
  report=$(realpath "$source")
else
  [[ -x $source ]] || fail "$source is neither a .html report nor an executable that makes one"
  report=$tmp/report.html
  "$source" "$report" >"$tmp/maker.log" 2>&1 ||
    { cat "$tmp/maker.log" >&2; fail "$source could not make a report"; }
  [[ -s $report ]] || { cat "$tmp/maker.log" >&2; fail "$source wrote no report to $report"; }
fi

# A fresh profile each run, so no state of an earlier run (or of a person's browser) matters.
run_browser() {
  timeout 90 "$browser" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
    --no-first-run --no-default-browser-check --disable-extensions --hide-scrollbars \
    --user-data-dir="$tmp/profile" "$@" 2>>"$tmp/browser.log"
}

# The same width as the screenshot, so the height the page measures is the screenshot's.
width=1400
run_browser --dump-dom --window-size="$width,1000" "file://$report" >"$tmp/dom.html" ||
  { tail -20 "$tmp/browser.log" >&2; fail "chromium could not load $report"; }

# The attributes the page's script sets on <html>.
root=$(grep -o -m1 '<html[^>]*>' "$tmp/dom.html" || true)
[[ -n $root ]] || { tail -20 "$tmp/browser.log" >&2; fail "chromium dumped no <html> element"; }
attribute() { sed -n "s/.* $1=\"\\([^\"]*\\)\".*/\\1/p" <<<"$root"; }

[[ $(attribute data-script-ran) == 1 ]] || fail "the page's script did not run: $root"
errors=$(attribute data-script-errors)
[[ -z $errors ]] || fail "script errors: $errors"
expected=$(attribute data-charts-expected)
total=$(attribute data-charts-total)
ok=$(attribute data-charts-ok)
[[ -n $total && -n $ok ]] || fail "the page's script verified no charts: $root"
[[ $total == "$expected" ]] ||
  fail "the page drew $expected charts but the browser found $total"
[[ $ok == "$total" ]] || fail "only $ok of $total charts have something plotted"
echo "charts verified: $ok of $total"

# Tall enough for the whole page, as the page measured itself.
height=$(attribute data-page-height)
[[ $height =~ ^[0-9]+$ ]] || height=3000
height=$((height + 16))
mkdir -p "$(dirname "$screenshot")"
rm -f "$screenshot"
run_browser --screenshot="$screenshot" --window-size="$width,$height" "file://$report" >/dev/null ||
  { tail -20 "$tmp/browser.log" >&2; fail "chromium could not take the screenshot"; }
[[ -f $screenshot ]] || fail "no screenshot at $screenshot"
[[ $(head -c 8 "$screenshot" | od -An -tx1 | tr -d ' \n') == 89504e470d0a1a0a ]] ||
  fail "$screenshot is not a PNG"
size=$(stat -c %s "$screenshot")
# A blank page compresses to about 6 bytes a row at this width; text, tables and charts to 50
# and more.
minimum=$((height * 20))
((size > minimum)) || fail "$screenshot is only $size bytes (under $minimum): is the page blank?"
echo "screenshot: $screenshot (${width}x$height, $size bytes)"
