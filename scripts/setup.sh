#!/usr/bin/env bash
# Install the Debian packages v4c builds against (if missing) and build it
# in ./build. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
pkgs=(build-essential cmake pkg-config libjansson-dev libpcre2-dev libomp-dev libopenblas-dev libmicrohttpd-dev clang libclang-rt-dev tmux curl nodejs npm)
missing=()
for p in "${pkgs[@]}"; do
  # node/npm may come from elsewhere (e.g. nodesource); any working npm will do.
  case "$p" in nodejs|npm) command -v npm >/dev/null && continue ;; esac
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
