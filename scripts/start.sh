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
# ...and those blocks, mapped afresh for every run's large activations, get transparent huge pages
# (glibc 2.35+; ignored by older ones): a 960-pixel page through the text detector faulted in
# ~30,000 4 KiB pages a run instead of ~2,500, and cost ~30 % more CPU (docs/deploy.md). Added to
# GLIBC_TUNABLES unless it already says something about glibc.malloc.hugetlb.
case ":${GLIBC_TUNABLES:-}:" in
  *:glibc.malloc.hugetlb=*) ;;
  *) export GLIBC_TUNABLES="${GLIBC_TUNABLES:+$GLIBC_TUNABLES:}glibc.malloc.hugetlb=1" ;;
esac
# V8 collects garbage on the main thread alone, without helper threads: while the models' threads keep
# every core busy, a collection that waits for helpers to get a core stretched the main thread's
# pauses, and its health checks, to 5-17 ms (docs/configuration.md). Node takes it on the command line
# only (not in NODE_OPTIONS).
exec node --single-threaded-gc "$built" serve "$@"
