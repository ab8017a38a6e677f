#!/usr/bin/env bash
# Installs what recouvrement needs on a fresh Debian machine: system packages (WeasyPrint's Pango,
# fonts, poppler-utils for reading PDFs in tests, zbar-tools for decoding the letters' QR codes in tests, PostgreSQL for the test server, Chromium for the
# web pages' tests) and the package with its test extras in a virtual environment, `.venv/`
# (Debian's Python refuses system-wide pip: PEP 668); `. .venv/bin/activate` puts `recouvrement` on
# the PATH. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=()
dpkg -s libpango-1.0-0 >/dev/null 2>&1 || packages+=(libpango-1.0-0)
dpkg -s libpangoft2-1.0-0 >/dev/null 2>&1 || packages+=(libpangoft2-1.0-0)
dpkg -s fonts-dejavu-core >/dev/null 2>&1 || packages+=(fonts-dejavu-core)
command -v pdftotext >/dev/null 2>&1 || packages+=(poppler-utils)
command -v zbarimg >/dev/null 2>&1 || packages+=(zbar-tools)
[ -x /usr/lib/postgresql/15/bin/initdb ] || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || packages+=(postgresql)
command -v chromium >/dev/null 2>&1 || packages+=(chromium)
command -v chromedriver >/dev/null 2>&1 || packages+=(chromium-driver)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || packages+=(python3-venv)
if [ ${#packages[@]} -gt 0 ]; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}"
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
