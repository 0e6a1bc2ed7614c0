#!/usr/bin/env bash
# Sets up what running and testing need (idempotent), type-checks, then runs
# every test. Extra arguments filter test files by path substring.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
echo "[test] type-checking (tsc --noEmit, strict)"
npx --no-install tsc -p tsconfig.json --noEmit
echo "[test] running tests"
node scripts/run-tests.mjs "$@"
