#!/usr/bin/env bash
# Sets up what running and testing need (idempotent), type-checks, checks the
# formatting (Prettier; `npm run format` fixes it), then runs every test. Extra arguments filter test files by path substring.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
echo "[test] type-checking (tsc --noEmit, strict)"
npx --no-install tsc -p tsconfig.json --noEmit
echo "[test] checking formatting (prettier --check)"
npm run --silent format:check
echo "[test] running tests"
node scripts/run-tests.mjs "$@"
