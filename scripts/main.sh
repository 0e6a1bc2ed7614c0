#!/usr/bin/env bash
# Sets up what running needs (idempotent), then runs the main job: the demo
# pipeline on the default dataset (see README). Arguments go to `medseg demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh run
node --import tsx packages/medseg/src/cli/main.ts demo "$@"
