#!/usr/bin/env bash
# Installs the Debian packages Lightbox builds, runs and tests with.
# Idempotent and quiet when everything is already there.
set -euo pipefail

# Build: cgo codecs (OpenJPEG, CharLS, libjpeg-turbo, GDCM's IJG 12/16-bit).
build=(gcc pkg-config libopenjp2-7-dev libcharls-dev libturbojpeg0-dev libjpeg62-turbo-dev libgdcm-dev)
# Tests: dcmtk and GDCM as oracles and DICOM peers, Chromium for the pages,
# PostgreSQL as the second catalog, Orthanc as a real PACS, the Central Test
# Node (ctn) and PixelMed (Java) as more DICOM implementations.
testing=(dcmtk libgdcm-tools chromium postgresql orthanc orthanc-dicomweb ctn default-jre-headless libpixelmed-java)

want=("${build[@]}")
if [ "${1:-}" = "--test" ]; then
	want+=("${testing[@]}")
fi

missing=()
for p in "${want[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing Debian packages: ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts the services it installs; the tests start their own.
for svc in postgresql orthanc; do
	if command -v systemctl >/dev/null && systemctl is-active -q "$svc" 2>/dev/null; then
		$sudo systemctl stop "$svc" || true
	fi
	[ -x "/etc/init.d/$svc" ] && $sudo "/etc/init.d/$svc" stop >/dev/null 2>&1 || true
done
