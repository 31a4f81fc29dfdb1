"""HoT (CVPR 2024): token pruning and recovery around MixSTE, MotionBERT-Lite and MotionAGFormer-B.

Run book:
  jaxpose train --config configs/hot.py:hot_mixste --workdir runs/hot_mixste
    The official `main_mixste.py` recipe: H36M with CPN 2D (no confidence), T = 243, training
    windows at stride 243, batch 4 clips, AdamW lr 4e-5, weight decay 0.1, lr x0.99 per epoch,
    160 epochs, loss w-MPJPE + 0.5 TC + 2 MPJVE, flip augmentation and flip test, seed 1126;
    method 'hot' (a fresh density jitter each step). 81 tokens kept at block 3 of 8.
    Expected: about 41.0 mm P1 (MixSTE's 40.9 + ~0.2 %) at 84.0 G MACs instead of 139.0 G; days
    on one GPU.
  jaxpose train --config configs/hot.py:tpc_mixste --workdir runs/tpc_mixste
    `main_mixste_tpc.py`: the same recipe, 61 tokens at block 7, prune only (seq2frame). Windows
    are 'center' windows (one every 243 frames for training, every frame for evaluation, as the
    official stride-1 test) with the whole window's 3D (`window_targets`): the loss uses the kept
    frames, the flip pass reuses the kept frames, the centre frame is scored. Evaluation runs one
    243-frame forward per frame: hours on a GPU for the H36M test set.
  jaxpose train --config configs/hot.py:hot_motionbert --workdir runs/hot_mb
    No official training script exists (HoT issue #1): MotionBERT-Lite's recipe (configs/
    motionbert.py: SH 2D + confidence, 2.5D targets, T = 243, stride 81, batch 32, AdamW lr 2e-4,
    wd 0.01, 120 epochs, MPJPE + 0.5 N-MPJPE + 20 MPJVE) with 81 tokens at block 1 of 5.
  jaxpose train --config configs/hot.py:hot_motionagformer --workdir runs/hot_mag
    MotionAGFormer-B's recipe (configs/motionagformer.py:b) with 81 tokens at layer 7 of 16.
  jaxpose train --config configs/hot.py:hot_mixste,smoke --workdir /tmp/hot_smoke
    seconds on a CPU (the backbone's test size, embedded deepmimic data).

Released checkpoints (Google Drive, plain state dicts): `--config.init_from.path=<hot_mixste.pth>
--config.init_from.format=torch` with `--config.model.kwargs` unchanged, or in Python
`jaxpose.convert.load_official('hot', path, model='mixste.hot_mixste')` (and
`model='mixste.tpc_mixste', token_num=61, layer_index=7` for TPC).
"""

from __future__ import annotations

from configs import common

VARIANTS = ('hot_mixste', 'tpc_mixste', 'hot_motionbert', 'hot_motionagformer')
# The smoke run (`:smoke`): HoT's test size (TEST_OVERRIDES of jaxpose/models/hot.py: the
# backbone's own 'test' variant, 4 tokens at block 1) and the window that backbone takes.
SMOKE_MODEL = {'backbone_variant': 'test', 'token_num': 4, 'layer_index': 1}
# (token_num, layer_index) of each variant (jaxpose/models/hot.py VARIANTS), declared in
# model.kwargs so the command line and sweeps can override them.
PRUNING = {
  'hot_mixste': (81, 3),
  'tpc_mixste': (61, 7),
  'hot_motionbert': (81, 1),
  'hot_motionagformer': (81, 7),
}
SMOKE_FRAMES = {'hot_mixste': 9, 'tpc_mixste': 9, 'hot_motionbert': 9, 'hot_motionagformer': 5}

# research/hot.md section 3: the README/abstract claims are verified, the per-model tables are not.
REFERENCE = {
  'source': 'HoT, CVPR 2024 (arXiv 2311.12028): README and abstract via research/hot.md sections '
  '2.5 and 3 (thop GMACs measured on the official classes; MPJPE from the "0.2 % drop '
  'on MixSTE, no loss on MotionBERT" claims, per-model tables unverified)',
  'hot_mixste': {'h36m': {'mpjpe_mm': 41.0, 'gmacs': 84.00, 'backbone_gmacs': 139.04}},
  'tpc_mixste': {'h36m': {'gmacs': 126.01, 'backbone_gmacs': 139.04}},
  'hot_motionbert': {'h36m': {'gmacs': 31.69, 'backbone_gmacs': 65.72}},
}


def _mixste_recipe(c, data, tpc=False):
  c.seed = 1126
  c.data = common.dataset(
    data,
    config=common.h36m_2d(data),
    frames=243,
    stride=243,
    use_conf=False,
    batch_size=4,
    eval_batch_size=4,
    **(dict(mode='center', window_targets=True) if tpc else {}),
  )
  c.method.loss.update(mpjpe=0.0, w_mpjpe=1.0, temporal_consistency=0.5, velocity=2.0)
  c.optim.update(name='adamw', lr=4e-5, weight_decay=0.1)
  c.train.epochs = 160


def _motionbert_recipe(c, data):
  c.data = common.dataset(
    data,
    config=common.h36m_2d(data, 'sh'),
    frames=243,
    stride=81,
    batch_size=32,
    eval_batch_size=32,
  )
  c.method.loss.update(mpjpe=1.0, n_mpjpe=0.5, velocity=20.0)
  c.optim.update(name='adamw', lr=2e-4, weight_decay=0.01)
  c.train.epochs = 120


def _motionagformer_recipe(c, data):
  c.data = common.dataset(
    data,
    config=common.h36m_2d(data, 'sh'),
    frames=243,
    stride=81,
    batch_size=16,
    eval_batch_size=16,
  )
  c.method.loss.update(mpjpe=1.0, n_mpjpe=0.5, velocity=20.0)
  c.optim.update(name='adamw', lr=5e-4, weight_decay=0.01)
  c.train.epochs = 60


RECIPES = {
  'hot_mixste': _mixste_recipe,
  'tpc_mixste': lambda c, data: _mixste_recipe(c, data, tpc=True),
  'hot_motionbert': _motionbert_recipe,
  'hot_motionagformer': _motionagformer_recipe,
}


def get_config(arg: str | None = None):
  a, c = common.start(arg, 'hot', VARIANTS)
  c.method.name = 'hot'
  RECIPES[a.variant](c, a.data)
  with c.model.kwargs.unlocked():
    c.model.kwargs.token_num, c.model.kwargs.layer_index = PRUNING[a.variant]
  c.schedule.update(type='exponential_epoch', decay=0.99)
  c.eval.flip_test = True
  if a.smoke:
    common.smoke(c, SMOKE_FRAMES[a.variant], SMOKE_MODEL)
    if a.variant == 'hot_motionagformer':  # its test backbone has a single layer
      c.model.kwargs.layer_index = 0
  return common.locked(c)


def get_sweep(arg: str | None = None):
  """The paper's ablation axes on HoT-MixSTE: how many tokens, and where to prune."""
  del arg
  return common.product(
    common.sweep('model.kwargs.token_num', [27, 54, 81, 121]),
    common.sweep('model.kwargs.layer_index', [1, 3, 5]),
  )
