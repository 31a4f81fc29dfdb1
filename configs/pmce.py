"""PMCE (ICCV 2023): 3D pose from a 2D clip (+ image features), then a body mesh co-evolving with it.

Run book (method settings: jaxpose/methods/pmce.py, DEFAULTS):
  jaxpose train --config configs/pmce.py:smoke --workdir /tmp/pmce_smoke     (seconds, CPU)
    both stages in one run on the embedded deepmimic_smpl (DeepMimic motion on the SYNTHETIC
    SMPL-format body, built on first use): a tiny model (T = 4, widths 8-16), the small synthetic
    body (400 vertices) for the ground-truth meshes, 2 steps of the pose stream then 2 of the whole
    model; evaluation on the 3 held-out clips x 4 cameras (1,228 frames): mpjpe_mm, mpjpe14_mm,
    pmpjpe14_mm, mpvpe_mm, pa_mpvpe_mm, accel_mm. A longer run: experiments/pmce_deepmimic.
  jaxpose train --config configs/pmce.py --workdir runs/pmce_deepmimic
    the official widths (103 M parameters at J = 17), T = 16, the full synthetic body (6890
    vertices), stage 'both': 60 epochs of stage 1 then 30 of stage 2 (an epoch = 170 steps of 32
    windows, about one pass over the 5,508 training windows), Adam lr 5e-5 x0.99 per epoch, edge
    loss from stage-2 epoch 10 (the official H36M recipe). A GPU job.
  The faithful two-run recipe (a fresh optimiser and schedule for stage 2):
    jaxpose train --config configs/pmce.py:stage=pose --workdir runs/pmce_pose
    jaxpose train --config configs/pmce.py:stage=mesh --workdir runs/pmce_mesh \
        --config.init_from.path=runs/pmce_pose
    Stage 2 finds stage 1 through `init_from.path` (a workdir: its best, else latest, checkpoint);
    the method copies the pose stream (`pose_lifter`) into the fresh model. Add
    `--config.method.kwargs.freeze_pose_stream=True` to keep it fixed (the official code does not).

Data: PMCE's own benchmarks (3DPW with COCO-19 inputs, H36M with CPN 2D and NeuralAnnot meshes,
precomputed SPIN features) need files users bring and are not wired here; `REFERENCE` holds the
paper's numbers. On deepmimic_smpl the image features are zeros (no images), the 2D input is the GT
projection plus the official synthetic detector noise (training only), and numbers are meaningful
only relative to each other (experiments/pmce_deepmimic has a mean-pose / mean-mesh baseline).

Deviations from the official recipe: one learning-rate schedule per run (exponential per-epoch
decay instead of the step schedules x0.8 at [10, 30, 50] / x0.9 at [10, 20]); windows of T + 2
frames so that evaluation also predicts each frame's neighbours (acceleration error per frame).
"""

from __future__ import annotations

from configs import common

VARIANTS = ('h36m', '3dpw')  # models/pmce.py VARIANTS: 17 H36M / 19 COCO input joints
STAGES = ('both', 'pose', 'mesh')
# The smoke run (`:smoke`): a tiny model (T = 4) and windows of T + 2 frames.
SMOKE_MODEL = {
  'num_frames': 4,
  'feat_dim': 8,
  'embed_dim': 16,
  'depth': 2,
  'num_heads': 2,
  'joint_dim': 8,
  'vertx_dim': 8,
  'joint_heads': 2,
  'gru_hidden': 4,
  'num_blocks': 2,
}
SMOKE_FRAMES = 6
FRAMES = 16  # the paper's seqlen
STEPS_PER_EPOCH = 170

REFERENCE = {
  'source': 'PMCE, ICCV 2023 (arXiv 2308.10305), Table 1 via research/pmce.md section 4 '
  '(entries not marked there as confirmed are to be checked against the PDF); mm, accel in '
  'mm/frame^2; each row is a separate model',
  'h36m': {'h36m': {'mpjpe_mm': 53.5, 'p_mpjpe_mm': 37.7, 'accel_mm': 3.1}},
  '3dpw': {
    'pw3d': {'mpjpe_mm': 69.5, 'p_mpjpe_mm': 46.7, 'mpvpe_mm': 84.8, 'accel_mm': 6.5},
    'mpi_inf_3dhp': {'mpjpe_mm': 79.7, 'p_mpjpe_mm': 54.5, 'accel_mm': 7.1},
  },
}


def get_config(arg: str | None = None):
  a = common.parse_arg(arg, variant='h36m', smoke=False, data='deepmimic_smpl', stage='both')
  if a.variant not in VARIANTS:
    raise ValueError(f'Unknown pmce variant {a.variant!r}; valid: {", ".join(VARIANTS)}')
  if a.stage not in STAGES:
    raise ValueError(f'Unknown stage {a.stage!r}; valid: {", ".join(STAGES)}')
  if a.data != 'deepmimic_smpl' or a.variant != 'h36m':
    raise ValueError(
      'configs/pmce.py runs on deepmimic_smpl with the h36m variant (17 H36M input joints); '
      "PMCE's 3DPW / H36M data need files users bring (see the module docstring)"
    )
  c = common.get_base_config()
  c.model.name, c.model.variant = 'pmce', a.variant
  c.method.name = 'pmce'
  frames = SMOKE_FRAMES if a.smoke else FRAMES + 2
  c.data = common.dataset(
    a.data,
    frames=frames,
    stride=1,
    mode='center',
    use_conf=False,
    flip_aug=False,
    window_targets=True,  # the neighbours' 3D for the acceleration error
    batch_size=32,
    eval_batch_size=64,
  )
  c.optim.update(name='adam', lr=5e-5 if a.stage != 'mesh' else 1e-4, weight_decay=0.0)
  c.schedule.update(type='exponential_epoch', decay=0.99)
  c.train.update(steps_per_epoch=STEPS_PER_EPOCH, log_every=50, ckpt_every=1000)
  c.train.epochs = {'both': 90, 'pose': 60, 'mesh': 30}[a.stage]
  c.eval.flip_test = False
  with c.method.kwargs.unlocked():
    c.method.kwargs.update(
      stage=a.stage,
      pose_steps=60 * STEPS_PER_EPOCH if a.stage == 'both' else 0,
      body='synthetic:full',
      edge_start_steps=10 * STEPS_PER_EPOCH,
    )
  if a.smoke:
    with c.model.kwargs.unlocked():
      c.model.kwargs.update(SMOKE_MODEL)
    c.data.batch_size = 8
    c.optim.lr = 1e-3
    c.train.update(epochs=0, total_steps=4, steps_per_epoch=0, log_every=2, ckpt_every=2)
    c.method.kwargs.update(
      body='synthetic:small', pose_steps=2 if a.stage == 'both' else 0, edge_start_steps=0
    )
  return common.locked(c)
