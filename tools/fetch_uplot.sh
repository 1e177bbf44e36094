#!/usr/bin/env bash
# Fetches uPlot (MIT; a small, maintained charting library) from the npm registry into third_party/uplot/, checked
# against its pinned sha512 integrity. The build embeds it into `mtl report`, whose HTML files therefore open
# offline. Idempotent; tools/setup.sh runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=1.6.32
INTEGRITY=KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw==
dest=third_party/uplot
if [ -f "$dest/VERSION" ] && [ "$(cat "$dest/VERSION")" = "$VERSION" ]; then
  echo "fetch_uplot: uPlot $VERSION present"
  exit 0
fi
command -v npm >/dev/null || { echo "fetch_uplot: npm is missing (tools/setup.sh installs it)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "uplot@$VERSION" >/dev/null)
tgz="$tmp/uplot-$VERSION.tgz"
got=$(/usr/bin/python3 -c 'import base64, hashlib, sys
print(base64.b64encode(hashlib.sha512(open(sys.argv[1], "rb").read()).digest()).decode())' "$tgz")
if [ "$got" != "$INTEGRITY" ]; then
  echo "fetch_uplot: uplot-$VERSION.tgz has sha512 $got, expected $INTEGRITY" >&2
  exit 1
fi
tar -xzf "$tgz" -C "$tmp"
mkdir -p "$dest"
cp "$tmp/package/dist/uPlot.iife.min.js" "$tmp/package/dist/uPlot.min.css" "$tmp/package/LICENSE" "$dest/"
echo "$VERSION" > "$dest/VERSION"
echo "fetch_uplot: uPlot $VERSION in $dest"
