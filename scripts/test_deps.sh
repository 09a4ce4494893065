#!/usr/bin/env bash
# System packages the tests use beyond Python, installed when missing and we may (root with
# apt-get): headless Chromium renders the HTML pages, and Debian's slurm-wlm and munge run the
# sweep tests against a real one-node Slurm (scripts/install_slurm.sh). Where we may not, each
# says loudly which tests will be skipped and why, unless EVALKIT_REQUIRE_CHROMIUM=1 /
# EVALKIT_REQUIRE_SLURM=1 (CI) make that a failure of the tests.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium for the HTML page tests ..."
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "WARNING: could not install chromium; the HTML page tests will be SKIPPED" >&2
  else
    echo "WARNING: chromium is not installed and cannot be installed here (needs root with apt-get):" \
         "the HTML page tests will be SKIPPED" >&2
  fi
fi
bash "$here/install_slurm.sh"
exit 0
