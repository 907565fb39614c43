#!/usr/bin/env bash
# Installs what is missing, starts the local services, runs the demo, stops the services.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/ensure-deps.sh
bash scripts/services.sh start || exit 1
trap 'bash scripts/services.sh stop >/dev/null 2>&1' EXIT
node_modules/node/bin/node --import tsx scripts/demo.ts
