"""DiffPose (CVPR 2023): the frame-based (GCNpose + GCNdiff) and video-based (MixSTE + GCNdiff) recipes.

Run book:
  jaxpose train --config configs/diffpose.py:frame --workdir runs/diffpose_cpn
    H36M, CPN 2D (train and test; see the GMM note), one pose per sample (T = 1), batch 1024,
    Adam lr 1e-3 (the official CLI default overrides the yml's 2e-5), no weight decay, grad-norm
    clip 1.0, 80 epochs, lr x0.9 at epoch 60 (approximated by a smooth x0.9**(1/60) per epoch).
    GCNdiff: eps-prediction, 51-step linear schedule, antithetic t, per-joint GMM noise scales.
    GCNpose trains jointly on MPJPE (`pose_loss_weight`; the official loads a separately trained
    checkpoint). Test: DDIM on the uniform grid [0, 12] (N = 24, 2 steps), eta 0, 1 sample.
    Expected: REFERENCE (49.7 mm, unverified recollection); hours on one GPU.
  jaxpose train --config configs/diffpose.py:frame,keypoints=gt --workdir runs/diffpose_gt
    GT 2D: test grid [0, 6] (N = 12, 2 steps).
  jaxpose train --config configs/diffpose.py:video --workdir runs/diffpose_video
    243-frame MixSTE2 initialiser (flip-averaged, not root-centred, as the video code) and a
    per-frame GCNdiff with the constant noise scale [0.5, 0.5, 1, 1, 1]; test: one DDIM step at
    t = 0 (N = 6, 1 step). Initialise from the released weights:
    `jaxpose.convert` cannot read the released list layout; use
    `jaxpose.models.diffpose.from_torch('diffpose_video_uvxyz_cpn.pth',
    pose_state_dict='mixste_cpn_243f.bin', initialiser='mixste')` and save with orbax.
  jaxpose train --config configs/diffpose.py:frame,smoke --workdir /tmp/diffpose_smoke  (CPU, s)
  Released frame weights: `from_torch('diffpose_uvxyz_cpn.pth', pose_state_dict='gcn_xyz_cpn.pth')`
    (the list [state_dict, optimizer, epoch, step, ema]: entry 0, the raw weights, as the official
    evaluation). Set method.kwargs.pose_loss_weight=0 to fine-tune GCNdiff alone.

With method.kwargs num_samples > 1 and eta > 0 the evaluation also reports the best of the S
chains (best_of_s_mpjpe_mm, best_of_s_p_mpjpe_mm). Method settings are `config.method.kwargs` (`jaxpose.methods.diffpose.DEFAULTS`). The official
release evaluates with `official_root_centring=True` semantics (its in-place root subtraction only
zeroes joint 0); jaxpose centres correctly by default.

GMM note: the official frame recipe trains on the GT-2D GMM file and tests on the CPN GMM file, and
draws the uv target and noise scale from per-joint mixtures (`kp2d_gmm` batches: build them with
`jaxpose.data.gmm` and the h36m builder's `*_gmm` configs). Without mixtures the method uses the
2D input as the uv target with the constant scale `uv_noise_scale`.
"""

from __future__ import annotations

from configs import common

VARIANTS = ('frame', 'video')
# The smoke run (`:smoke`): GCNdiff at its test size (TEST_OVERRIDES of jaxpose/models/diffpose.py);
# the video variant adds a tiny MixSTE initialiser on 9-frame windows.
SMOKE_MODEL = {'hid_dim': 16, 'num_layers': 1}
SMOKE_FRAMES = {'frame': 1, 'video': 9}
KEYPOINTS = {'cpn': 'cpn_ft_h36m_dbb', 'gt': 'gt'}
# (test_num_timesteps N, test_steps n) of the official ymls: seq = range(0, N, N // n).
TEST_GRID = {
  ('frame', 'cpn'): (24, 2),
  ('frame', 'gt'): (12, 2),
  ('video', 'cpn'): (6, 1),
  ('video', 'gt'): (12, 2),
}

REFERENCE = {
  'source': 'DiffPose, CVPR 2023 (arXiv 2211.16940) via research/diffpose.md section 4: the table '
  'values are recollections marked unverified there; the per-action reproduction is a user report '
  '(Diffpose_video issue #2)',
  'frame': {'h36m': {'mpjpe_mm': 49.7, 'p_mpjpe_mm': 31.6}},
  'video': {
    'h36m': {'mpjpe_mm': 36.9, 'p_mpjpe_mm': 28.7},
    'h36m_released_weights_smoking': {'mpjpe_mm': 40.72, 'paper': 37.3},
  },
}


def get_config(arg: str | None = None):
  a = common.parse_arg(arg, variant='frame', smoke=False, data='h36m', keypoints='cpn')
  if a.variant not in VARIANTS:
    raise ValueError(f'Unknown DiffPose variant {a.variant!r}; valid: {", ".join(VARIANTS)}')
  if a.keypoints not in KEYPOINTS:
    raise ValueError(f'Unknown keypoints {a.keypoints!r}; valid: {", ".join(KEYPOINTS)}')
  c = common.get_base_config()
  c.seed = 19960903
  c.model.name, c.model.variant = 'diffpose', a.variant
  frames = 1 if a.variant == 'frame' else 243
  kw = dict(
    frames=frames,
    stride=frames,
    use_conf=False,
    flip_aug=a.variant == 'video',
    batch_size=1024 if a.variant == 'frame' else 4,
    eval_batch_size=1024 if frames == 1 else 4,
  )
  if a.data == 'h36m':
    c.data = common.dataset('h36m', config=KEYPOINTS[a.keypoints], **kw)
  else:
    c.data = common.dataset(a.data, **kw)
  n, k = TEST_GRID[(a.variant, a.keypoints)]
  c.method.name = 'diffpose'
  c.method.loss.update(mpjpe=1.0)  # the initialiser's term (pose_loss_weight)
  with c.method.kwargs.unlocked():
    c.method.kwargs.update(test_num_timesteps=n, test_steps=k, eta=0.0, num_samples=1)
    if a.variant == 'video':
      c.method.kwargs.update(flip_init=True, centre_init=False, uv_noise_scale=0.5)
  c.optim.update(name='adam', lr=1e-3, weight_decay=0.0, grad_clip=1.0)
  c.schedule.update(type='exponential_epoch', decay=0.9 ** (1 / 60))
  c.train.epochs = 80
  c.eval.flip_test = False  # the video recipe flips inside the method (flip_init)
  if a.smoke:
    if a.variant == 'video':  # a tiny MixSTE initialiser on short windows
      with c.model.kwargs.unlocked():
        c.model.kwargs.num_frames = 9
        c.model.kwargs.pose_kwargs = (('dim', 32), ('depth', 2))
    common.smoke(c, SMOKE_FRAMES[a.variant], SMOKE_MODEL)
    c.data.use_conf = False
  return common.locked(c)


def get_sweep(arg: str | None = None):
  """DDIM steps at test time (the paper's ablation of the number of reverse steps)."""
  del arg
  return common.product(common.sweep('method.kwargs.test_steps', [1, 2, 4, 8]))
