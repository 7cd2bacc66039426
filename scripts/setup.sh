#!/usr/bin/env bash
# Install what coursegen needs on a fresh Debian/Ubuntu machine: the OCR engine from Debian
# (tesseract-ocr; espeak-ng too, to regenerate the sample), then the package itself.
#   scripts/setup.sh          # the product
#   scripts/setup.sh --test   # the product and its test tools
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v tesseract >/dev/null 2>&1 || missing+=(tesseract-ocr)
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

extra=""
[ "${1:-}" = "--test" ] && extra="[test]"
echo "setup: installing coursegen${extra} with pip" >&2
python3 -m pip install -q --disable-pip-version-check -e ".${extra}"
command -v coursegen >/dev/null 2>&1 || echo "setup: add $(python3 -m site --user-base)/bin to PATH" >&2
echo "setup: done. Try: coursegen run samples/lecture.mp4" >&2
