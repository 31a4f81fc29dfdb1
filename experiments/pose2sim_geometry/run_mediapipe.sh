#!/usr/bin/env bash
# 2D keypoints for the Pose2Sim demo from MediaPipe, in a venv of its own (never jaxpose's: mediapipe
# pins its own jax/jaxlib, protobuf and opencv-contrib).
#
#   bash experiments/pose2sim_geometry/run_mediapipe.sh <Demo_SinglePerson dir> <out.npz>
#
# The venv goes to $MEDIAPIPE_VENV (default ~/.cache/jaxpose/venv-mediapipe-0.10.14, ~1.1 GB); pip
# needs the network once. mediapipe 0.10.14 ships pose_landmark_full.tflite, so the legacy
# solutions API at model_complexity=1 then runs offline.
set -euo pipefail
demo=${1:?usage: run_mediapipe.sh <Demo_SinglePerson dir> <out.npz>}
out=${2:?usage: run_mediapipe.sh <Demo_SinglePerson dir> <out.npz>}
venv=${MEDIAPIPE_VENV:-$HOME/.cache/jaxpose/venv-mediapipe-0.10.14}
here=$(cd "$(dirname "$0")" && pwd)
if [ ! -x "$venv/bin/python" ]; then
  python3.11 -m venv "$venv"
  # No constraints file: the jaxpose environment's pins must not leak into this venv.
  PIP_CONSTRAINT= "$venv/bin/pip" install -q mediapipe==0.10.14
fi
"$venv/bin/python" "$here/mediapipe_2d.py" --demo "$demo" --out "$out"
