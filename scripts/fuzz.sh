#!/usr/bin/env bash
# Runs every fuzz target in the module for a while each: FUZZTIME=30s by
# default (make test passes a short time; make fuzz a longer one). A crash
# is written by go test under the package's testdata/fuzz and fails the run.
set -euo pipefail
t="${FUZZTIME:-30s}"
fail=0
for pkg in $(go list ./...); do
	for target in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
		echo "fuzz $pkg $target ($t)"
		if ! go test -run='^$' -fuzz="^${target}\$" -fuzztime="$t" "$pkg" >/tmp/lightbox-fuzz.log 2>&1; then
			cat /tmp/lightbox-fuzz.log
			fail=1
		fi
	done
done
exit $fail
