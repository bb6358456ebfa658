#!/usr/bin/env bash
# Debian packages the test suite needs: real protocol peers (Mosquitto, libcoap), Chromium for
# page tests, and the autotools that build tinydtls for CoAP over DTLS. Installed only when
# missing; needs root (CI runs as root) or sudo.
set -euo pipefail

needed=(mosquitto mosquitto-clients libcoap3-bin chromium autoconf automake libtool)
missing=()
for pkg in "${needed[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "system-packages: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "system-packages: run as root or install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
