#!/usr/bin/env bash
# Re-vendor the editor's browser libraries from npm into frontend/vendor/ (committed; nothing loads from a CDN).
# Versions are pinned in package.json and package-lock.json; to upgrade, edit package.json, run
# `npm install` here, then this script, then the browser tests (tests/test_editor_browser.py).
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --ignore-scripts
copy() {  # copy <npm package> <vendor dir> <dist .mjs>
  local pkg="node_modules/$1" dst="vendor/$2"
  rm -rf "$dst" && mkdir -p "$dst"
  # NiceGUI's import map points the package name at index.js. The .mjs builds expect a bundler to define
  # process.env.NODE_ENV; we have no bundler, so define it here, as a bundler would.
  sed 's/process\.env\.NODE_ENV/"production"/g' "$pkg/dist/$3" > "$dst/index.js"
  cp "$pkg"/dist/*.css "$dst/"
  cp "$pkg/LICENSE" "$dst/LICENSE"
  node -e "const p=require('./$pkg/package.json'); console.log(p.name+'@'+p.version+' '+p.license)" > "$dst/VERSION"
  echo "vendored $(cat "$dst/VERSION") -> $dst"
}
copy @vue-flow/core vue-flow-core vue-flow-core.mjs
copy @vue-flow/minimap vue-flow-minimap vue-flow-minimap.mjs
