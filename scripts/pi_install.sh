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
# Only the edge extra: OpenCV headless and LiteRT. numpy stays apt's own (1.24 on Bookworm,
# 2.2 on Trixie): the pin stops pip from putting numpy 2 in the venv for a newer OpenCV,
# which apt's picamera2 and its helpers, built against apt's numpy, would not load with.
pip install './hwr-pi[edge]' "numpy==$(python3 -c 'import numpy; print(numpy.__version__)')"
