"""MotionAGFormer (WACV 2024): official recipes for the four variants.

Run book:
  jaxpose train --config configs/motionagformer.py:b --workdir runs/mag_b
    H36M, MotionBERT's `sh` pickle (SH-ft detections + confidence, 2.5D targets); AdamW lr 5e-4,
    wd 0.01, lr x0.99 per epoch, 60 epochs, batch 16 clips, loss MPJPE + 0.5 N-MPJPE + 20 velocity,
    flip augmentation and flip test. Build the data first:
    jaxpose data build h36m --config sh --manual_dir <dir with the pkl> --data_dir ~/jaxpose_datasets
    Expected: REFERENCE below (paper), several days on one GPU for B/L.
  jaxpose train --config configs/motionagformer.py:xs,data=mpi_inf_3dhp --workdir runs/mag_3dhp
    3DHP: Adam (amsgrad), lr 5e-4, no weight decay, 90 epochs, T=81 (27 for XS), train stride 9.
  jaxpose train --config configs/motionagformer.py:xs,smoke --workdir /tmp/mag_smoke
    seconds on a CPU, on the embedded deepmimic data.
  jaxpose main   (= the README's first command: xs,main on deepmimic; about 10 minutes on 2 CPU cores)
"""

from __future__ import annotations

from configs import common

FRAMES = {'xs': 27, 's': 81, 'b': 243, 'l': 243}
FRAMES_3DHP = {'xs': 27, 's': 81, 'b': 81, 'l': 81}
# The smoke run (`:smoke`): the model at its test size (TEST_OVERRIDES of jaxpose/models/motionagformer.py)
# and the window length that tiny model takes. Declared here so configs stay pure data.
SMOKE_MODEL = dict(
  n_layers=1,
  dim_feat=16,
  dim_rep=8,
  num_heads=2,
  n_frames=5,
  drop=0.1,
  attn_drop=0.1,
  drop_path=0.1,
)
SMOKE_FRAMES = 5

# The paper's numbers (mm; PCK %, AUC %). Source: arXiv 2310.16288 Tables 1 and 3 via
# research/motionagformer.md section 3; values marked unverified there are recalled, not checked.
REFERENCE = {
  'source': 'MotionAGFormer, WACV 2024 (arXiv 2310.16288), Tab. 1 (H36M), Tab. 3 (3DHP)',
  'xs': {
    'h36m': {'mpjpe_mm': 45.1, 'p_mpjpe_mm': 36.9, 'mpjpe_gt2d_mm': 28.1},
    'mpi_inf_3dhp': {'pck150': 98.2, 'auc': 83.5, 'mpjpe_mm': 19.2},
  },
  's': {
    'h36m': {'mpjpe_mm': 42.5, 'p_mpjpe_mm': 35.3, 'mpjpe_gt2d_mm': 26.5},
    'mpi_inf_3dhp': {'pck150': 98.3, 'auc': 84.5, 'mpjpe_mm': 17.1},
  },
  'b': {
    'h36m': {'mpjpe_mm': 38.4, 'p_mpjpe_mm': 32.6, 'mpjpe_gt2d_mm': 19.4},
    'mpi_inf_3dhp': {'pck150': 98.3, 'auc': 84.2, 'mpjpe_mm': 18.2},
  },
  'l': {
    'h36m': {'mpjpe_mm': 38.4, 'p_mpjpe_mm': 32.5, 'mpjpe_gt2d_mm': 17.3},
    'mpi_inf_3dhp': {'pck150': 98.2, 'auc': 85.3, 'mpjpe_mm': 16.2},
  },
}


def get_config(arg: str | None = None):
  a, c = common.start(arg, 'motionagformer', FRAMES, main=False)
  c.method.loss.update(mpjpe=1.0, n_mpjpe=0.5, velocity=20.0)
  c.optim.update(name='adamw', lr=5e-4, weight_decay=0.01)
  c.schedule.update(type='exponential_epoch', decay=0.99)
  c.eval.flip_test = True
  if a.data == 'mpi_inf_3dhp':
    t = FRAMES_3DHP[a.variant]
    c.data = common.dataset('mpi_inf_3dhp', frames=t, stride=9, batch_size=16, eval_batch_size=128)
    c.optim.update(name='adam_amsgrad', weight_decay=0.0)
    c.train.epochs = 90
    c.eval.protocol = 'mpi_inf_3dhp'
  elif a.data == 'h36m':
    t = FRAMES[a.variant]
    c.data = common.dataset(
      'h36m', config='sh', frames=t, stride=t // 3, batch_size=16, eval_batch_size=16
    )
    c.train.epochs = 60
  else:
    c.data = common.dataset(a.data, frames=FRAMES[a.variant], stride=FRAMES[a.variant] // 3)
  if c.data.frames != FRAMES[a.variant]:  # 3DHP B/L run at T = 81
    with c.model.kwargs.unlocked():
      c.model.kwargs.n_frames = c.data.frames
  if a.main:
    main_job(c)
  return common.finish(c, a, SMOKE_FRAMES, SMOKE_MODEL)


def main_job(c):
  """The README main job: MotionAGFormer-XS from scratch on the embedded deepmimic clips, sized to
  finish in about 10 minutes on 2 CPU cores (install, dataset build and compile included)."""
  c.data.update(common.dataset('deepmimic', frames=27, stride=9, batch_size=8, eval_batch_size=16))
  c.train.epochs, c.train.total_steps = 0, 400
  c.train.log_every, c.train.ckpt_every, c.train.eval_every = 10, 100, 200
  c.optim.lr = 1e-3
  c.schedule.update(type='cosine', warmup_steps=10)


def get_sweep(arg: str | None = None):
  """FLOPs against accuracy: the four variants, each with its own window T."""
  del arg
  return common.zipit(
    common.sweep('model.variant', list(FRAMES)),
    common.sweep('data.frames', list(FRAMES.values())),
    common.sweep('data.stride', [t // 3 for t in FRAMES.values()]),
  )
