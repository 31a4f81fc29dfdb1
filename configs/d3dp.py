"""D3DP (ICCV 2023): diffusion around a lifter (MixSTE), DDIM multi-hypothesis sampling, JPMA.

Run book:
  jaxpose train --config configs/d3dp.py:243 --workdir runs/d3dp_cpn
    H36M with CPN 2D, T = 243 non-overlapping training chunks (flip augmentation), batch
    1024 // 243 = 4 clips, AdamW lr 6e-5, weight decay 0.1, lr x0.993 per epoch, 400 epochs,
    MPJPE on the x0 prediction (cosine schedule, 1000 steps), seed 1. Validation as the official
    run: H = K = 1. Test: H = 20 hypotheses, K = 10 DDIM steps, flip test-time augmentation in
    every step, evaluation batches of 4 windows (P-Best is batch-level).
    Expected: REFERENCE (J-Agg 39.5 mm); several days on one GPU in the paper's setting.
  jaxpose train --config configs/d3dp.py:243,keypoints=gt --workdir runs/d3dp_gt   (GT 2D)
  jaxpose train --config configs/d3dp.py:243,data=mpi_inf_3dhp --workdir runs/d3dp_3dhp
    3DHP with GT 2D, T = 243, real camera-space `annot3` poses (not `univ_annot3`): needs the
    builder config 'annot3' with pixel intrinsics, GT root trajectories and valid masks.
  jaxpose train --config configs/d3dp.py:243,lifter=motionagformer --workdir runs/d3dp_mag
    the same diffusion around MotionAGFormer-B (any registry lifter listed in
    `jaxpose.models.d3dp.LIFTERS`, or one given `embed` and `time_dim`).
  jaxpose train --config configs/d3dp.py:243,smoke --workdir /tmp/d3dp_smoke   (seconds, CPU)
  Released checkpoints (`h36m_best_epoch.bin`, `3dhp_best_epoch.bin`): --config.init_from.path=
    <file> --config.init_from.format=torch, or
    `jaxpose.convert.load_official('d3dp', path, cs=512, dep=8, number_of_frames=243)`.

Sampler settings are `config.method.kwargs` (`jaxpose.methods.d3dp.DEFAULTS`): num_hypotheses H,
num_steps K, num_timesteps (1000), scale (1.0), eta (1.0), seed (0). The arg `sampling=` picks the
published (H, K): validation (1, 1, the default: what the official run validates with), readme
(5, 5) or paper (20, 10); any other on the command line, without retraining:
  jaxpose eval --config configs/d3dp.py:243 --workdir runs/d3dp_cpn \
    --config.method.kwargs.num_hypotheses=20 --config.method.kwargs.num_steps=10
The engine's eval reports P-Agg of the last step (`methods.d3dp.predict`); the four protocols with
JPMA per step come from `methods.d3dp.evaluate` (needs pose3d_root and the camera in the batch).

Deviations: jaxpose trains on L, the official script on L dL (`loss.backward(loss.detach())`, as
MixSTE); float32 diffusion arithmetic (official float64 buffers); see jaxpose/methods/d3dp.py.
"""

from __future__ import annotations

from configs import common

FRAMES = {'243': 243, '81': 81, '27': 27}
KEYPOINTS = {'cpn': 'cpn_ft_h36m_dbb', 'gt': 'gt'}
LIFTER_VARIANT = {'mixste': '', 'motionagformer': 'b'}
# The smoke run (`:smoke`): the denoiser at its test size (TEST_OVERRIDES of jaxpose/models/d3dp.py:
# 9 frames, a tiny MixSTE with dropout on); another lifter takes its own TEST_OVERRIDES (less its
# window length, which the denoiser's num_frames sets).
SMOKE_MODEL = {'num_frames': 9}
SMOKE_FRAMES = 9
SMOKE_LIFTER = {
  'mixste': (('dim', 32), ('depth', 2), ('drop_rate', 0.1)),
  'motionagformer': (
    ('n_layers', 1),
    ('dim_feat', 16),
    ('dim_rep', 8),
    ('num_heads', 2),
    ('drop', 0.1),
    ('attn_drop', 0.1),
    ('drop_path', 0.1),
  ),
}

# mm; PCK % and AUC %. Keys: dataset -> 'H<h>_K<k>' (last step unless '_step<i>') -> protocol.
REFERENCE = {
  'source': 'D3DP, ICCV 2023 (arXiv 2303.11579), via research/d3dp.md section 4: H36M from the '
  'Papers-with-Code listings (not checked against the paper body); 3DHP from the CSVs of '
  'the official MATLAB scorer in the repo (3dhp_test/test_util/H20_K10)',
  '243': {
    'h36m': {'H20_K10': {'J_Agg': {'mpjpe_mm': 39.5}, 'J_Best': {'mpjpe_mm': 35.4}}},
    'h36m_gt2d': {'H20_K10': {'unspecified': {'mpjpe_mm': 19.6}}},
    'mpi_inf_3dhp': {
      'H20_K10': {
        'P_Agg': {'pck150': 97.69, 'auc': 78.02, 'mpjpe_mm': 30.05},
        'J_Agg': {'pck150': 97.72, 'auc': 78.11, 'mpjpe_mm': 29.77},
        'P_Best': {'pck150': 97.85, 'auc': 78.32, 'mpjpe_mm': 29.59},
        'J_Best': {'pck150': 98.07, 'auc': 79.12, 'mpjpe_mm': 28.23},
      },
      'H20_K10_step1': {
        'P_Agg': {'pck150': 97.85, 'auc': 77.92, 'mpjpe_mm': 29.99},
        'J_Agg': {'pck150': 97.70, 'auc': 77.99, 'mpjpe_mm': 29.86},
        'P_Best': {'pck150': 97.89, 'auc': 78.07, 'mpjpe_mm': 29.67},
        'J_Best': {'pck150': 98.07, 'auc': 78.96, 'mpjpe_mm': 28.26},
      },
    },
  },
}

# (H, K) of the published evaluations.
SAMPLING = {'validation': (1, 1), 'readme': (5, 5), 'paper': (20, 10)}


def get_config(arg: str | None = None):
  a = common.parse_arg(
    arg,
    variant='243',
    smoke=False,
    data='h36m',
    keypoints='cpn',
    lifter='mixste',
    sampling='validation',
  )
  if a.variant not in FRAMES:
    raise ValueError(f'Unknown D3DP variant {a.variant!r}; valid: {", ".join(FRAMES)}')
  if a.keypoints not in KEYPOINTS:
    raise ValueError(f'Unknown keypoints {a.keypoints!r}; valid: {", ".join(KEYPOINTS)}')
  if a.sampling not in SAMPLING:
    raise ValueError(f'Unknown sampling {a.sampling!r}; valid: {", ".join(SAMPLING)}')
  if a.lifter not in LIFTER_VARIANT:
    raise ValueError(f'Unknown lifter {a.lifter!r}; valid: {", ".join(LIFTER_VARIANT)}')
  t = FRAMES[a.variant]
  c = common.get_base_config()
  c.seed = 1
  c.model.name, c.model.variant = 'd3dp', a.variant
  with c.model.kwargs.unlocked():
    c.model.kwargs.in_channels = 5  # 2D (u, v) + noisy 3D
    if a.lifter != 'mixste':
      c.model.kwargs.lifter = a.lifter
      c.model.kwargs.lifter_variant = LIFTER_VARIANT[a.lifter]
  kw = dict(
    frames=t,
    stride=t,
    use_conf=False,
    flip_aug=True,
    batch_size=max(1, 1024 // t),
    eval_batch_size=4,
  )
  if a.data == 'h36m':
    c.data = common.dataset('h36m', config=KEYPOINTS[a.keypoints], **kw)
  elif a.data == 'mpi_inf_3dhp':
    # D3DP's own 3DHP files: real camera-space `annot3` (mm -> m), GT 2D, root 14.
    c.data = common.dataset('mpi_inf_3dhp', config='annot3', **kw)
    c.eval.protocol = 'mpi_inf_3dhp'
  else:
    c.data = common.dataset(a.data, **kw)
  c.method.name = 'd3dp'
  h, k = SAMPLING[a.sampling]
  with c.method.kwargs.unlocked():
    c.method.kwargs.update(num_hypotheses=h, num_steps=k, num_timesteps=1000, scale=1.0, eta=1.0)
  c.method.loss.update(mpjpe=1.0)
  c.optim.update(name='adamw', lr=6e-5, weight_decay=0.1)
  c.schedule.update(type='exponential_epoch', decay=0.993)
  c.train.epochs = 400
  c.eval.flip_test = True  # flip TTA inside every denoising step
  if a.smoke:
    common.smoke(c, SMOKE_FRAMES, {**SMOKE_MODEL, 'lifter_kwargs': SMOKE_LIFTER[a.lifter]})
    c.data.use_conf = False
  return common.locked(c)


def get_sweep(arg: str | None = None):
  """CPN and GT 2D inputs (the paper's two H36M rows)."""
  del arg
  return common.sweep('data.config', list(KEYPOINTS.values()))
