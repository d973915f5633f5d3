#!/usr/bin/env bash
# Screenshot one built page with headless Chromium (no Playwright, no network needed).
# Usage: tools/screenshot.sh PAGE OUT.png [WIDTHxHEIGHT]
#   PAGE: a file (e.g. _build/html/book/01_lazy_vs_meanfield.html) or a URL.
#   The window is 1280x2200 unless given; --virtual-time-budget lets MathJax and the widget
#   manager finish before the picture is taken.
set -euo pipefail
PAGE=${1:?usage: tools/screenshot.sh PAGE OUT.png [WIDTHxHEIGHT]}
OUT=${2:?usage: tools/screenshot.sh PAGE OUT.png [WIDTHxHEIGHT]}
SIZE=${3:-1280x2200}
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
[ -n "$CHROMIUM" ] || { echo "screenshot.sh: chromium not found (make chromium)" >&2; exit 1; }
case "$PAGE" in
  http://*|https://*|file://*) URL=$PAGE ;;
  *) [ -f "$PAGE" ] || { echo "screenshot.sh: no such page: $PAGE" >&2; exit 1; }
     URL="file://$(cd "$(dirname "$PAGE")" && pwd)/$(basename "$PAGE")" ;;
esac
mkdir -p "$(dirname "$OUT")"
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
"$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --hide-scrollbars --window-size="${SIZE/x/,}" \
  --virtual-time-budget=15000 --screenshot="$OUT" "$URL" >/dev/null 2>&1 || true
[ -s "$OUT" ] || { echo "screenshot.sh: chromium wrote no screenshot for $URL" >&2; exit 1; }
echo "$OUT"
