#!/usr/bin/env bash
# Runs every fuzz target in the module for a while each: FUZZTIME=30s by
# default (make test passes a short time; make fuzz a longer one). A crash
# is written by go test under the package's testdata/fuzz and fails the run.
#
# FUZZ_FRESH=1 first clears Go's fuzz cache: the corpus a machine gathered
# in earlier runs is replayed before fuzzing starts ("baseline coverage"),
# and once that takes longer than FUZZTIME, go test stops with "context
# deadline exceeded" without having fuzzed at all. make test's short runs
# start from the seeds in testdata instead.
set -euo pipefail
t="${FUZZTIME:-30s}"
# go test minimizes every new interesting input for up to a minute, and
# meanwhile does not fuzz: a 20 s run spent most of its time there. A
# failing input is written whether or not it was minimized in time.
# FUZZMINIMIZETIME sets the bound.
m="${FUZZMINIMIZETIME:-2s}"
if [ "${FUZZ_FRESH:-}" = 1 ]; then
	go clean -fuzzcache
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
fail=0
for pkg in $(go list ./...); do
	for target in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
		echo "fuzz $pkg $target ($t)"
		if go test -run='^$' -fuzz="^${target}\$" -fuzztime="$t" -fuzzminimizetime="$m" "$pkg" >"$log" 2>&1; then
			continue
		fi
		# The same toolchain limit as above, hit with a fresh cache on a
		# loaded machine: not a finding, but say so.
		if grep -q "context deadline exceeded" "$log" && ! grep -q "Failing input written" "$log"; then
			echo "  warning: $target stopped before fuzzing (baseline coverage outlasted $t); no input failed"
			continue
		fi
		cat "$log"
		fail=1
	done
done
exit $fail
