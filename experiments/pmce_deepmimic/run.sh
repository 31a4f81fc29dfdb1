#!/usr/bin/env bash
# PMCE on deepmimic_smpl: both stages in one run (300 steps of the pose stream, then 700 of the
# whole model), a small model on the small synthetic body. See README.md. CPU: about 10 minutes.
set -euo pipefail
WORKDIR=${1:-/tmp/pmce_deepmimic}
jaxpose train --config configs/pmce.py:smoke --workdir "$WORKDIR" \
  --config.train.total_steps=1000 --config.method.kwargs.pose_steps=300 --config.optim.lr=5e-3 \
  --config.method.kwargs.edge_start_steps=200 \
  --config.train.log_every=50 --config.train.ckpt_every=300 \
  --config.data.batch_size=32 --config.data.frames=10 \
  --config.model.kwargs.num_frames=8 --config.model.kwargs.embed_dim=32 \
  --config.model.kwargs.num_heads=4 --config.model.kwargs.joint_dim=16 \
  --config.model.kwargs.vertx_dim=16 --config.model.kwargs.joint_heads=4 \
  --config.model.kwargs.num_blocks=3 --config.train.progress=False
