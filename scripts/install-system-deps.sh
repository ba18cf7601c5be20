#!/usr/bin/env bash
# System packages the test suite needs, from Debian's archive; installs only what is missing.
#   fonts-dejavu-core: tests render text with sharp (SVG), which needs a font.
#   python3-torch, python3-torchvision, python3-onnx: the PyTorch export helper (`onnx-serve convert`).
#   chromium: the dashboard's browser test (driven by playwright-core, never a downloaded browser).
set -euo pipefail
packages=(fonts-dejavu-core python3-torch python3-torchvision python3-onnx chromium)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing system packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "installing system packages: ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
