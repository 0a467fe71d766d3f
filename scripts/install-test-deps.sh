#!/usr/bin/env bash
# Installs the Debian packages the test suite uses, when missing (idempotent; runs before
# `npm test` and in .ci/run):
#   oathtool   — an independent TOTP implementation the tests check codes against
#   chromium   — test/browser drives it headless with playwright-core, which downloads no browser
#   postgresql — server binaries in /usr/lib/postgresql/*/bin; the tests start throwaway clusters
#                of their own, never the system service
set -euo pipefail
missing=()
command -v oathtool >/dev/null 2>&1 || missing+=(oathtool)
[ -x /usr/bin/chromium ] || missing+=(chromium)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
[ "${#missing[@]}" -eq 0 ] && exit 0
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-test-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
echo "install-test-deps: installing ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
