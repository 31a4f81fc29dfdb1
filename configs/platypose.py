"""Platypose (2024): the MDM motion prior (training) and the zero-shot guided-sampling evaluations.

Run book:
  jaxpose train --config configs/platypose.py:h36m_256 --workdir runs/platypose_prior
    The prior: MDM d 512, ff 1024, 8 layers, 4 heads, unconditional x0-prediction on the 20-step
    respaced cosine process; H36M train subjects (S1 S5 S6 S7 S8), 256-frame chunks with stride
    128, rotation about the vertical axis (10 angles) and mirror augmentation, AdamW lr 1e-4,
    no weight decay, batch 64, 600k steps, no 2D data. jaxpose trains on camera-frame motion
    (pose3d_cam + pose3d_root; the official uses world-frame motion, z up) and does not do the
    official random-length crops. Days on one GPU.
  Evaluation (`method.kwargs` below; N = 200 samples, S = 10 substeps, skip 4 of 20 steps, DDIM
  eta 0): H36M S9/S11 (energy scale 30), 3DHP TS1-6 and 3DPW (energy scale 10), the H36M prior in
  all three, single-frame samples (num_frames 1). Released weights (W&B / Hugging Face
  `sinzlab/platypose`, MDM_H36m_256_frames_50_steps_dynamic): `jaxpose.convert.load_official(
  'platypose', path)`. The paper's protocol needs world-frame cameras and the GT root:
  `jaxpose.methods.platypose.sample(model, variables, official_observation(...))` then
  `jaxpose.metrics.{min_mpjpe, min_p_mpjpe, best_sample_mpjve, calibration_coverage,
  calibration_score}`. `jaxpose train`'s evaluation reports MPJPE of `predict` (a leak-free
  nominal monocular camera, median sample) and, through the method's `eval_metrics`, the paper's
  camera-frame protocol per action: min_mpjpe_mm and min_p_mpjpe_mm (GT root and GT-derived
  weights, as the official evaluate.py); calibration needs `sample` + the sampling metrics.
    jaxpose train --config configs/platypose.py:h36m --workdir runs/pp_eval_h36m
      (train.total_steps 0 with init_from set evaluates a loaded prior)
    jaxpose train --config configs/platypose.py:h36m,data=mpi_inf_3dhp --workdir runs/pp_3dhp
  jaxpose train --config configs/platypose.py:h36m_256,smoke --workdir /tmp/pp_smoke  (CPU, s)
"""

from __future__ import annotations

from configs import common

VARIANTS = ('h36m_256', 'h36m')
# The smoke run (`:smoke`): the prior at its test size (TEST_OVERRIDES of
# jaxpose/models/platypose.py) and the window length that tiny model takes.
SMOKE_MODEL = {'num_frames': 8, 'latent_dim': 32, 'ff_size': 64, 'num_layers': 2, 'max_len': 64}
SMOKE_FRAMES = 8
KEYPOINTS = {'cpn': 'cpn_ft_h36m_dbb', 'gt': 'gt'}

# method.kwargs of the three evaluation configs (experiments/{h36m,3dhp,3dpw}.yaml).
EVAL = {
  'h36m': {'num_samples': 200, 'num_substeps': 10, 'energy_scale': 30.0, 'skip_timesteps': 4},
  'mpi_inf_3dhp': {
    'num_samples': 200,
    'num_substeps': 10,
    'energy_scale': 10.0,
    'skip_timesteps': 4,
  },
  'pw3d': {'num_samples': 200, 'num_substeps': 10, 'energy_scale': 10.0, 'skip_timesteps': 4},
}
# Chunk strides of the official evaluations (frames).
EVAL_STRIDE = {'h36m': 160, 'mpi_inf_3dhp': 3, 'pw3d': 35}

REFERENCE = {
  'source': 'sinzlab/platypose experiments/*.yaml comments (identical in the three files, dataset '
  'not stated; research/platypose.md section 4); the paper tables are unverified',
  'h36m': {
    'N200_F1': {'min_mpjpe_mm': 48.38, 'calibration': 0.132},
    'N200_F1_scale30': {'min_mpjpe_mm': 48.28, 'calibration': 0.140},
    'N50_F1': {'min_mpjpe_mm': 54.78, 'calibration': 0.140},
    'N200_F16': {'min_mpjpe_mm': 48.97, 'calibration': 0.100},
  },
}


def get_config(arg: str | None = None):
  a = common.parse_arg(arg, variant='h36m_256', smoke=False, data='h36m', keypoints='cpn')
  if a.variant not in VARIANTS:
    raise ValueError(f'Unknown Platypose variant {a.variant!r}; valid: {", ".join(VARIANTS)}')
  if a.keypoints not in KEYPOINTS:
    raise ValueError(f'Unknown keypoints {a.keypoints!r}; valid: {", ".join(KEYPOINTS)}')
  c = common.get_base_config()
  c.model.name, c.model.variant = 'platypose', a.variant
  frames = 256 if a.variant == 'h36m_256' else 1
  # use_conf: the prior reads (B, T, J, 3) (noisy 3D); the engine initialises from kp2d's shape.
  kw = dict(
    frames=frames,
    stride=max(frames // 2, 1),
    use_conf=True,
    flip_aug=False,
    batch_size=64,
    eval_batch_size=8,
  )
  if a.data == 'h36m':
    c.data = common.dataset('h36m', config=KEYPOINTS[a.keypoints], **kw)
  else:
    c.data = common.dataset(a.data, **kw)
    if a.data == 'mpi_inf_3dhp':
      c.eval.protocol = 'mpi_inf_3dhp'
  c.method.name = 'platypose'
  with c.method.kwargs.unlocked():
    c.method.kwargs.update(EVAL.get(a.data, EVAL['h36m']))
  c.optim.update(name='adamw', lr=1e-4, weight_decay=0.0)
  c.schedule.update(type='constant', warmup_steps=0)
  c.train.update(epochs=0, total_steps=600_000, ckpt_every=10_000, log_every=100)
  c.eval.flip_test = False
  if a.smoke:
    common.smoke(c, SMOKE_FRAMES, SMOKE_MODEL)
    c.data.use_conf = True
    c.method.kwargs.update(num_samples=4, num_substeps=2)
  return common.locked(c)


def get_sweep(arg: str | None = None):
  """The energy scale and the number of samples (the repo's ablation comments)."""
  del arg
  return common.product(
    common.sweep('method.kwargs.energy_scale', [10.0, 30.0, 60.0]),
    common.sweep('method.kwargs.num_samples', [50, 200]),
  )
