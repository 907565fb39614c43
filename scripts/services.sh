#!/usr/bin/env bash
# Local test services (Postgres + PostgREST stand-in + patched s3rver).
# Usage: bash scripts/services.sh start [--lanes N]|stop|status
# One entry point for tests, the demo and CI; the logic lives in scripts/test-services/cli.ts.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec node_modules/node/bin/node --import tsx scripts/test-services/cli.ts "$@"
