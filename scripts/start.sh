#!/usr/bin/env bash
# npm start: compile only when a source or build setting is newer than the last build, then serve.
# (tsc takes ~15 s here; an up-to-date checkout goes straight to the server.)
set -euo pipefail
cd "$(dirname "$0")/.."
built=dist/cli/index.js
if [ ! -f "$built" ] || [ -n "$(find src tsconfig.json tsconfig.build.json package.json -newer "$built" -print -quit)" ]; then
  npm run build
fi
exec node "$built" serve "$@"
