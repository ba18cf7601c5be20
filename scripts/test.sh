#!/usr/bin/env bash
# The whole test suite, on a fresh machine of this kind: system packages, npm packages, build, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-deps.sh
[ -d node_modules/onnxruntime-node ] || npm ci --no-audit --no-fund
npm run build
# One test file at a time: the e2e files each start servers whose worker threads share two cores.
# A hang fails after 5 minutes instead of holding CI: Node 20 applies the timeout to each file, later
# Node versions to each test; the longest file takes well under it.
node --import tsx --test --test-concurrency=1 --test-timeout=300000 test/unit/*.test.ts test/e2e/*.test.ts
