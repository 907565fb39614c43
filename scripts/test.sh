#!/usr/bin/env bash
# Runs every test on Node 24 against the committed dist/ and real local services, then prints
# "N passed, M failed" as its last line. Installs whatever is missing: npm packages, PostgreSQL
# (through scripts/services.sh), and the archive tools the round-trip tests extract with.
# Extra arguments are passed to `node --test` (e.g. --test-name-pattern=cancel).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

source scripts/ensure-deps.sh

missing=()
for tool in unzip zstd; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing ${missing[*]} with apt-get (one time)"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}") || exit 1
fi

bash scripts/services.sh start || exit 1
trap 'bash scripts/services.sh stop >/dev/null 2>&1' EXIT

tap=$(mktemp)
# One test file at a time: faults and outages are injected into services every file shares.
node_modules/node/bin/node --import tsx --test --test-concurrency=1 \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$tap" \
  "$@" '__tests__/**/*.test.ts'
status=$?

passed=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$tap" | tail -n 1)
failed=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$tap" | tail -n 1)
rm -f "$tap"
bash scripts/services.sh stop >/dev/null 2>&1
trap - EXIT
echo "${passed:-0} passed, ${failed:-0} failed"
if [ "$status" -eq 0 ] && [ "${failed:-0}" -ne 0 ]; then status=1; fi
exit "$status"
