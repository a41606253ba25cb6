#!/usr/bin/env bash
# Install the edge runtime on a Raspberry Pi (Raspberry Pi OS Bookworm or Trixie, 64-bit).
# Run it from the folder that holds your checkout `hwr-pi`: bash hwr-pi/scripts/pi_install.sh
# firmware_notes/README.md quotes these commands word for word and `make verify-arm64` runs
# this file in an emulated arm64 Debian; tests/test_verify_script.py keeps the two the same.
set -euo pipefail
sudo apt update
sudo apt install -y python3-venv python3-numpy
# --system-site-packages lets the venv see apt's numpy and picamera2 (picamera2 cannot be
# pip-installed without libcamera).
python3 -m venv --system-site-packages ~/hwr-venv
. ~/hwr-venv/bin/activate
# Only the edge extra: OpenCV headless and LiteRT. The pin keeps apt's numpy (1.24 on
# Bookworm, 2.2 on Trixie), which apt's compiled modules (picamera2's among them) are built
# against: without it pip puts numpy 2 in the venv on Bookworm, for OpenCV >= 4.12.
pip install './hwr-pi[edge]' "numpy==$(python3 -c 'import numpy; print(numpy.__version__)')"
