#!/usr/bin/env bash
# One entry point for a fresh machine:
#   bash dev.sh serve [--port 8080 ...]   install (once) and start the editor with an example graph open
#   bash dev.sh test  [pytest args ...]   install (once, with test extras and Chromium) and run the tests
#   bash dev.sh install                   only create/refresh the virtual environment in .venv
set -euo pipefail
cd "$(dirname "$0")"

install() {
  if [ ! -x .venv/bin/python ]; then
    python3.11 -m venv .venv 2>/dev/null || python3 -m venv .venv
  fi
  # Reinstall only when the dependencies change; torch + PyTorch3D are large.
  local stamp=".venv/.installed-$(cat pyproject.toml | sha1sum | cut -c1-12)"
  if [ ! -f "$stamp" ]; then
    echo "installing nodegraph and its dependencies into .venv (torch 2.11 + PyTorch3D: a few minutes the first time)"
    .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]" 2>&1 | grep -v '^WARNING: Location' || true
    .venv/bin/python -c "import torch, pytorch3d; from pytorch3d import _C" \
      || { echo "PyTorch3D does not load: torch and easypytorch3d must be installed together (see pyproject.toml)"; exit 1; }
    rm -f .venv/.installed-*; touch "$stamp"
  fi
}

browser() {
  if [ ! -x /usr/bin/chromium ]; then
    echo "installing Debian's chromium for the browser tests"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "warning: could not install chromium; browser tests will be skipped"
  fi
}

case "${1:-}" in
  install) install ;;
  serve) install; shift; exec .venv/bin/python -m nodegraph serve "$@" ;;
  test) install; browser; shift; exec .venv/bin/python -m pytest "$@" ;;
  *) echo "usage: bash dev.sh serve|test|install [args]"; exit 2 ;;
esac
