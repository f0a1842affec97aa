#!/usr/bin/env bash
# Installs the system packages kmo's demo and tests need, only when they are missing.
# Runs apt-get only as root; otherwise it says what is missing and leaves the machine alone.
set -euo pipefail

need=()
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
command -v mvn  >/dev/null 2>&1 || need+=(maven)
command -v softhsm2-util >/dev/null 2>&1 || need+=(softhsm2)   # the PKCS#11 module the HSM tests use
command -v chromium >/dev/null 2>&1 || need+=(chromium)         # renders the compliance reports in a test

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "kmo: missing system packages: ${need[*]} (install them, or run make as root)" >&2
  exit 1
fi
echo "kmo: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
