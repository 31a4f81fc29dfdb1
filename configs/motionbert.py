"""MotionBERT / DSTformer (ICCV 2023): dual-stream spatio-temporal transformer, 3D pose.

Run book:
  jaxpose train --config configs/motionbert.py:base --workdir runs/motionbert
    H36M, MotionBERT's `sh` pickle (SH 2D + confidence, 2.5D targets), 243-frame clips; AdamW
    lr 2e-4, weight decay 0.01, lr x0.99 per epoch, 120 epochs from scratch (60 when fine-tuning
    from the pretrained checkpoint: --config.init_from.path=<latest_epoch.bin>
    --config.init_from.format=torch), batch 32, loss MPJPE + 0.5 N-MPJPE + 20 MPJVE, flip.
    Expected: REFERENCE (39.2 mm scratch, 37.2 mm fine-tuned).
  jaxpose train --config configs/motionbert.py:lite,smoke --workdir /tmp/mb_smoke  (seconds, CPU)
"""

from __future__ import annotations

from configs import common

VARIANTS = ('base', 'lite')
# The smoke run (`:smoke`): the model at its test size (TEST_OVERRIDES of jaxpose/models/motionbert.py)
# and the window length that tiny model takes. Declared here so configs stay pure data.
SMOKE_MODEL = {'dim_feat': 32, 'dim_rep': 64, 'depth': 2, 'maxlen': 9}
SMOKE_FRAMES = 9

REFERENCE = {
  'source': 'MotionBERT README model zoo and issue #95 (research/motionbert.md section 3)',
  'base': {'h36m': {'mpjpe_mm': 39.2, 'mpjpe_ft_mm': 37.2, 'mpjpe_gt2d_mm': 16.9}},
}


def get_config(arg: str | None = None):
  a, c = common.start(arg, 'motionbert', VARIANTS)
  c.data = common.dataset(
    a.data,
    config=common.h36m_2d(a.data, 'sh'),
    frames=243,
    stride=81,
    batch_size=32,
    eval_batch_size=32,
  )
  c.method.loss.update(mpjpe=1.0, n_mpjpe=0.5, velocity=20.0)
  c.optim.update(name='adamw', lr=2e-4, weight_decay=0.01)
  c.schedule.update(type='exponential_epoch', decay=0.99)
  c.train.epochs = 120
  return common.finish(c, a, SMOKE_FRAMES, SMOKE_MODEL)


def get_sweep(arg: str | None = None):
  del arg
  return common.sweep('model.variant', list(VARIANTS))
