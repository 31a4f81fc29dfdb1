"""UAO (IEEE TMM 2025): the GUMLP single-frame lifter with uncertainty, and test-time optimisation.

Run book:
  jaxpose train --config configs/uao.py:published --workdir runs/uao
    H36M with CPN 2D, single frame (one output per window of 1), Adam (amsgrad) lr 1e-3,
    lr x0.95 per epoch, 39 epochs, batch 128, seed 1, loss MPJPE + the Gaussian NLL of the
    uncertainty head, flip test. Expected: REFERENCE (GUMLP 49.4 mm).
  jaxpose eval --config configs/uao.py:published,tto --workdir runs/uao
    the same model evaluated with UAO's test-time optimisation (4 Adam steps on the 2D input, per
    sample, ground-truth root and camera as the official evaluation). Expected: 46.7 mm.
  jaxpose train --config configs/uao.py:smoke --workdir /tmp/uao_smoke   (seconds, CPU)

Deviation: the official training adds a flipped copy of every sample; here each sample is flipped
with probability 1/2.
"""

from __future__ import annotations

from configs import common

VARIANTS = ('published', 'l5')
# The smoke run (`:smoke`): the model at its test size (TEST_OVERRIDES of jaxpose/models/uao.py)
# and the window length that tiny model takes. Declared here so configs stay pure data.
SMOKE_MODEL = {'channel': 32, 'layers': 1}
SMOKE_FRAMES = 1  # single-frame lifter

REFERENCE = {
  'source': 'UAO official README (research/uao.md): H36M, CPN 2D, Protocol 1',
  'published': {'h36m': {'mpjpe_mm': 49.4, 'mpjpe_tto_mm': 46.7}},
}


def get_config(arg: str | None = None):
  a, c = common.start(arg, 'uao', VARIANTS, tto=False)
  c.method.name = 'uao'
  c.data = common.dataset(
    a.data,
    config=common.h36m_2d(a.data),
    frames=1,
    stride=1,
    mode='center',
    use_conf=False,
    batch_size=128,
    eval_batch_size=128,
  )
  c.optim.update(name='adam_amsgrad', lr=1e-3, weight_decay=0.0)
  c.schedule.update(type='exponential_epoch', decay=0.95)
  c.train.epochs = 39
  c.seed = 1
  with c.method.kwargs.unlocked():
    c.method.kwargs.tto_iters = 4 if a.tto else 0
  return common.finish(c, a, SMOKE_FRAMES, SMOKE_MODEL)


def get_sweep(arg: str | None = None):
  """Plain inference against test-time optimisation with 1, 2, 4 and 8 steps."""
  del arg
  return common.sweep('method.kwargs.tto_iters', [0, 1, 2, 4, 8])
