"""VideoPose3D (CVPR 2019): dilated temporal convolutions, one output frame per window.

Run book:
  jaxpose train --config configs/videopose3d.py:b --workdir runs/vp3d_243
    H36M with CPN 2D (`data_2d_h36m_cpn_ft_h36m_dbb.npz`), receptive field 243; Adam (amsgrad),
    lr 1e-3, lr x0.95 per epoch, 80 epochs (README), batch 1024 windows, MPJPE loss on root-relative
    3D, flip augmentation. Build the data first:
    jaxpose data build h36m --config cpn_ft_h36m_dbb --manual_dir <dir> --data_dir ~/jaxpose_datasets
    Expected: REFERENCE (46.8 mm P1); about a day on one GPU in the paper's setting.
  jaxpose train --config configs/videopose3d.py:xs,smoke --workdir /tmp/vp3d_smoke   (seconds, CPU)

Deviations from the official recipe: the BatchNorm momentum schedule (0.1 -> 0.001 over the run)
is a model field (`bn_momentum`), which the default trainer keeps constant at its initial value;
the official every-chunk-twice flip doubling is a random flip with p = 0.5 here.
"""

from __future__ import annotations

from configs import common

RECEPTIVE_FIELD = {'xs': 27, 's': 81, 'b': 243}
# The smoke run (`:smoke`): the model at its test size (TEST_OVERRIDES of jaxpose/models/videopose3d.py)
# and the window it takes (the receptive field of the variant). Declared here so configs stay pure data.
SMOKE_MODEL = {'channels': 16}

REFERENCE = {
  'source': 'VideoPose3D README (research/videopose3d.md section 3); CPN fine-tuned 2D, GT boxes',
  'b': {'h36m': {'mpjpe_mm': 46.8, 'p_mpjpe_mm': 36.5, 'mpjpe_gt2d_mm': 37.2}},
  's': {'h36m': {'mpjpe_mm': 47.7, 'p_mpjpe_mm': 37.2}},
  'xs': {'h36m': {'mpjpe_mm': 48.8, 'p_mpjpe_mm': 38.0}},
}


def get_config(arg: str | None = None):
  a, c = common.start(arg, 'videopose3d', ('b', 'xs', 's'))
  rf = RECEPTIVE_FIELD[a.variant]
  c.data = common.dataset(
    a.data,
    config=common.h36m_2d(a.data),
    frames=rf,
    stride=1,
    mode='center',
    use_conf=False,
    batch_size=1024,
    eval_batch_size=1024,
  )
  c.method.loss.update(mpjpe=1.0)
  c.optim.update(name='adam_amsgrad', lr=1e-3, weight_decay=0.0)
  c.schedule.update(type='exponential_epoch', decay=0.95)
  c.train.epochs = 80
  return common.finish(c, a, RECEPTIVE_FIELD[a.variant], SMOKE_MODEL)


def get_sweep(arg: str | None = None):
  """Receptive field against accuracy."""
  del arg
  return common.zipit(
    common.sweep('model.variant', list(RECEPTIVE_FIELD)),
    common.sweep('data.frames', list(RECEPTIVE_FIELD.values())),
  )
