#!/usr/bin/env bash
# npm start: compile only when a source or build setting is newer than the last build, then serve.
# (tsc takes ~15 s here; an up-to-date checkout goes straight to the server.)
set -euo pipefail
cd "$(dirname "$0")/.."
built=dist/cli/index.js
if [ ! -f "$built" ] || [ -n "$(find src tsconfig.json tsconfig.build.json package.json -newer "$built" -print -quit)" ]; then
  npm run build
fi
# glibc keeps large freed blocks per worker thread unless told to return them; with variable input
# shapes (the OCR recognizer) the process would stay at its largest footprint (docs/deploy.md).
export MALLOC_MMAP_THRESHOLD_="${MALLOC_MMAP_THRESHOLD_:-131072}"
exec node "$built" serve "$@"
