#!/usr/bin/env bash
# Sets up (idempotent), then runs the main job: the demo pipeline on the
# default dataset (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
node --import tsx packages/medseg/src/cli/main.ts demo "$@"
