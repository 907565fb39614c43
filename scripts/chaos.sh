#!/usr/bin/env bash
# npm run chaos -- --runs N --seed S: the randomized fault matrix against dist/ on the local
# services. Starts the services (and stops them again) unless they are already running.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

source scripts/ensure-deps.sh
if [ ! -f .services/env.json ]; then
  bash scripts/services.sh start >/dev/null || exit 1

  trap 'bash scripts/services.sh stop >/dev/null 2>&1' EXIT
fi
node_modules/node/bin/node --import tsx scripts/chaos.ts "$@"
