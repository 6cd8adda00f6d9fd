#!/usr/bin/env bash
# Whole-process rendering, Lightbox against dcmtk's dcmj2pnm, side by side
# in one run: the same file, the same job (frame 1, min-max window, PNG
# out), RUNS times each, interleaved so that the machine's noise falls on
# both alike. Prints medians in ms and the ratio Lightbox / dcmj2pnm.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-20}"
bin=bin/lightbox
[ -x "$bin" ] || go build -o "$bin" ./cmd/lightbox
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ms() { # run a command, print its wall time in ms
	local t0 t1
	t0=$(date +%s%N)
	"$@" >/dev/null 2>&1
	t1=$(date +%s%N)
	echo $(((t1 - t0) / 1000))
}
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f", m/1000}'; }

printf '%-32s %12s %12s %8s\n' "file (frame 1, min-max, PNG)" "lightbox ms" "dcmj2pnm ms" "ratio"
for f in testdata/ct-signed-implicit-512.dcm testdata/cr-chest-monochrome1.dcm; do
	: >"$tmp/lb" && : >"$tmp/dc"
	for _ in $(seq "$RUNS"); do
		ms "$bin" render --minmax "$f" "$tmp/lb.png" >>"$tmp/lb"
		ms dcmj2pnm +on +Wm "$f" "$tmp/dc.png" >>"$tmp/dc"
	done
	lb=$(median <"$tmp/lb")
	dc=$(median <"$tmp/dc")
	printf '%-32s %12s %12s %8s\n' "$(basename "$f")" "$lb" "$dc" "$(awk -v a="$lb" -v b="$dc" 'BEGIN {printf "%.2f", a/b}')"
done
echo "goal: ratio at most 0.50"
