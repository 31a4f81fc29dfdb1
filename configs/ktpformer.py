"""KTPFormer (CVPR 2024): MixSTE with kinematics (KPA) and trajectory (TPA) prior attention.

Run book:
  jaxpose train --config configs/ktpformer.py:243 --workdir runs/ktpformer
    H36M with CPN 2D (`cpn_ft_h36m_dbb`), F = 243, `-cs 512 -dep 7` (35.2M params), non-overlapping
    training chunks, batch 1024 // 128 = 8 clips, flip augmentation (every chunk also flipped) and
    flip test; AdamW lr 8e-5, weight decay 0.1, lr x0.99 per epoch, 200 epochs; loss
    w-MPJPE + 0.5 TC + 2 MPJVE (research/ktpformer.md section 4). Build the data first:
    jaxpose data build h36m --config cpn_ft_h36m_dbb --manual_dir <dir> --data_dir ~/jaxpose_datasets
    Expected: REFERENCE (P1 40.1 mm, unverified); several days on one large GPU (154 GMACs per clip).
  jaxpose train --config configs/ktpformer.py:243 --workdir runs/ktpformer_gt --config.data.config=gt
    GT 2D input (REFERENCE mpjpe_gt2d_mm).
  jaxpose train --config configs/ktpformer.py:243,smoke --workdir /tmp/ktpformer_smoke  (seconds, CPU)

Evaluation follows MixSTE's protocol (non-overlapping windows, the last one aligned to the sequence
end, flip test, action-wise averages). The released `model_243_{CPN,GT}_best_epoch.bin` load with
`--config.init_from.path=<file> --config.init_from.format=torch` (`ktpformer.from_torch`).

Deviations: the official script cannot train (in-place add, issue #23) and, from MixSTE, would
back-propagate L * grad(L) (`loss.backward(loss.detach())`); jaxpose trains on L. DropPath drops
whole clips (see the model docstring).
"""

from __future__ import annotations

from configs import common

FRAMES = {'243': 243, '81': 81, '27': 27}
# The smoke run (`:smoke`): the model at its test size (TEST_OVERRIDES of jaxpose/models/ktpformer.py)
# and the window length that tiny model takes. Declared here so configs stay pure data.
SMOKE_MODEL = {'num_frames': 9, 'dim': 32, 'depth': 1, 'num_heads': 4}
SMOKE_FRAMES = 9

REFERENCE = {
  'source': (
    'KTPFormer, CVPR 2024 (arXiv 2404.00658), recalled in research/ktpformer.md section 3; H36M '
    'values unverified against the paper tables; 3DHP MPJPE from a public listing, its window '
    'length not recorded (81 assumed, the STCFormer protocol the authors point to)'
  ),
  '243': {'h36m': {'mpjpe_mm': 40.1, 'p_mpjpe_mm': 31.9, 'mpjpe_gt2d_mm': 19.0}},
  '81': {'mpi_inf_3dhp': {'pck150': 98.9, 'auc': 85.9, 'mpjpe_mm': 16.7}},
}


def get_config(arg: str | None = None):
  a, c = common.start(arg, 'ktpformer', FRAMES)
  t = FRAMES[a.variant]
  c.data = common.dataset(
    a.data,
    config=common.h36m_2d(a.data),
    frames=t,
    stride=t,
    use_conf=False,
    flip_aug=True,
    batch_size=1024 // 128,
    eval_batch_size=4,
  )
  c.method.loss.update(mpjpe=0.0, w_mpjpe=1.0, temporal_consistency=0.5, velocity=2.0)
  c.optim.update(name='adamw', lr=8e-5, weight_decay=0.1)
  c.schedule.update(type='exponential_epoch', decay=0.99)
  c.train.epochs = 200
  c.eval.flip_test = True
  return common.finish(c, a, SMOKE_FRAMES, SMOKE_MODEL)


def get_sweep(arg: str | None = None):
  """Window length against accuracy (the three published F)."""
  del arg
  return common.zipit(
    common.sweep('model.variant', list(FRAMES)),
    common.sweep('data.frames', list(FRAMES.values())),
    common.sweep('data.stride', list(FRAMES.values())),
  )
