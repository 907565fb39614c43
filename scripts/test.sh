#!/usr/bin/env bash
# Runs every test on Node 24 against the committed dist/ and real local services, then prints
# "N passed, M failed" as its last line. Installs whatever is missing: npm packages, PostgreSQL
# (through scripts/services.sh), and the archive and age tools the round-trip tests extract and decrypt with.
# Extra arguments are passed to `node --test` (e.g. --test-name-pattern=cancel, or a file).
# TEST_LANES (default 3) sets how many test files run at once, each on its own lane of services.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

source scripts/ensure-deps.sh

missing=()
# age: the reference implementation the encrypted backups are checked against.
for tool in unzip zstd age; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing ${missing[*]} with apt-get (one time)"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}") || exit 1
fi

# Each file runs on a lane of its own (scripts/test-services/config.ts), so faults and outages that
# one file injects reach no other, and files run side by side.
lanes=${TEST_LANES:-3}
bash scripts/services.sh start --lanes "$lanes" || exit 1
trap 'bash scripts/services.sh stop >/dev/null 2>&1' EXIT

tap=$(mktemp)
node_modules/node/bin/node --import tsx --test --test-concurrency="$lanes" \
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
