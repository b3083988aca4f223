#!/usr/bin/env bash
# Refresh book/_static/ipywidgets/ from the npm registry: the standalone ipywidgets manager
# (@jupyter-widgets/html-manager, dist/embed.js) and the Font Awesome fonts its CSS refers to.
# embed.js renders the widget state that papermill stores in an executed notebook, with the
# built-in widgets only (base, controls, output) and without RequireJS or a CDN.
#
#   tools/vendor_ipywidgets.sh [VERSION]      # default: the version in book/_static/ipywidgets/VERSION
set -euo pipefail
cd "$(dirname "$0")/.."
dest=book/_static/ipywidgets
version=${1:-$(cat "$dest/VERSION")}
command -v npm >/dev/null || { echo "error: npm not found (apt-get install npm)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "@jupyter-widgets/html-manager@$version" >/dev/null && tar xzf ./*.tgz)
rm -f "$dest"/embed.js "$dest"/embed.js.LICENSE.txt "$dest"/*.woff "$dest"/*.woff2
cp "$tmp"/package/dist/embed.js "$tmp"/package/dist/embed.js.LICENSE.txt "$dest"/
cp "$tmp"/package/dist/*.woff2 "$tmp"/package/dist/*.woff "$dest"/
echo "$version" > "$dest/VERSION"
(cd "$dest" && sha256sum embed.js *.woff2 *.woff > SHA256SUMS)
echo "book/_static/ipywidgets: @jupyter-widgets/html-manager $version"
