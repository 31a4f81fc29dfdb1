"""EpipolarPose (Kocabas, Karagoz, Akbas, CVPR 2019, arXiv:1903.02330): 3D pose from one image,
trained fully supervised or self-supervised from multi-view geometry (no 3D labels, no extrinsics).

Arg: 'variant[,mode][,data=name][,cpu][,smoke]' with variant r50 (default), r34, r18, an image dataset
(default h36m: `h36m_images`, see below; data=deepmimic_render runs here) and mode one of
  sup      (default) fully supervised from the ground-truth 2D/3D of each crop
  teacher  the 2D teacher: the same integral network on 2D labels only (the paper's MPII stage)
  ss       self-supervised without extrinsics: pseudo-3D from view pairs (teacher 2D -> F -> E ->
           R, t up to scale -> polynomial triangulation), two views per example, init from the
           teacher
  ss_rt    self-supervised "with R/t": pseudo-3D triangulated with the known extrinsics
  refine   the refinement unit (§3.3) on a frozen trained network (--config.init_from.path)

Run book (paper recipe, H36M, 256 x 256 crops, batch 32, Adam 1e-3, x0.1 at epochs 90 and 120, 140
epochs; scale 1 + 0.25 clip(N, -1, 1), rotation 30 clip(N, -2, 2) deg with p 0.6, colour
U(0.8, 1.2), synthetic occluders, no flip; eval without flip test; one GPU-week per run):
  jaxpose train --config configs/epipolarpose.py:r50 --workdir runs/ep_r50 \\
      --config.init_from.path=<MPII integral .pth.tar> --config.init_from.format=torch
  jaxpose train --config configs/epipolarpose.py:r50,teacher --workdir runs/ep_teacher
  jaxpose pseudolabel --config configs/epipolarpose.py:r50,ss \\
      --config.method.kwargs.teacher=runs/ep_teacher --config.method.kwargs.labels=runs/ss.npz
  jaxpose train --config configs/epipolarpose.py:r50,ss --workdir runs/ep_ss \\
      --config.method.kwargs.labels=runs/ss.npz --config.init_from.path=runs/ep_teacher
  jaxpose train --config configs/epipolarpose.py:r50,refine --workdir runs/ep_refine \\
      --config.init_from.path=runs/ep_ss
Expected: REFERENCE (MPJPE 51.8 mm supervised R50; SS 76.6 mm with R/t, N-MPJPE 78.8 mm without).

**H36M images are not built here.** The data block names `h36m_images`, which has no builder yet
(the frames are licence-gated), so `jaxpose train` stops at "unknown dataset 'h36m_images'". A
user needs: the Human3.6M videos (vision.imar.ro, registration), frames extracted (the official
code trains on every 5th frame of S1, S5-S8 and evaluates every 64th of S9, S11), the cameras
(`cameras.h5` or the official annotation pickles) and an `h36m_images` TFDS builder writing the
image records of plan CONTRACTS §4 (one record per synchronised frame, 4 views, encoded JPEGs,
kp2d_px, pose3d_world in metres, K, dist, R, t; metadata kind 'image', layout_3d 'h36m17',
num_views 4), modelled on tfds_builders/deepmimic_render. The official MPII-pretrained and
ImageNet weights load with --config.init_from.format=torch.

Smoke and the embedded data (deepmimic_render, 4 H36M cameras, exact labels; its numbers only
compare runs with each other): `:r18,smoke[,teacher|ss|...]` is a tiny ResNet-18 (width 8) at
64 x 64 for a few steps (seconds on a CPU). The study in experiments/epipolarpose_deepmimic
(README: commands and the side-by-side table) runs teacher -> supervised and teacher ->
pseudo-labels -> self-supervised through `jaxpose train` on the 2-core CPU.

Deviations from the paper: the teacher is trained on the dataset's own 2D labels (the paper's is
MPII-trained, hence its 16-joint MPII order); the dataset's joint order is kept. The refinement
unit's optimiser keeps a constant rate (official: x0.96 every 100k steps).
"""

from __future__ import annotations

from configs import common

VARIANTS = ('r50', 'r34', 'r18')
MODES = ('sup', 'teacher', 'ss', 'ss_rt', 'refine')
# The smoke run: EpipolarPose at a test size (ResNet-18 of width 8, three 16-filter deconvolutions,
# 8 depth bins) on 64 x 64 crops of deepmimic_render. Declared here so configs stay pure data.
SMOKE_MODEL = {
  'width': 8,
  'deconv_filters': (16, 16, 16),
  'depth_res': 8,
  'input_size': 64,
}
SMOKE_SIZE = 64
# The CPU study (arg flag `cpu`, experiments/epipolarpose_deepmimic): ResNet-18 at half width, three
# 128-filter deconvolutions, 32 depth bins on 128 x 128 crops (a step of 16 crops in about a second
# on 2 CPU cores).
CPU_MODEL = {
  'width': 32,
  'deconv_filters': (128, 128, 128),
  'depth_res': 32,
  'input_size': 128,
}
CPU_SIZE = 128

REFERENCE = {
  'source': (
    'EpipolarPose official README (github.com/mkocabas/EpipolarPose @ 299ccb0; research/'
    'epipolarpose.md §5): H36M S9/S11 every 64th frame, GT root depth, mm'
  ),
  'r18': {'h36m': {'mpjpe_mm': 63.0}},
  'r34': {'h36m': {'mpjpe_mm': 59.6}},
  'r50': {
    'h36m': {
      'mpjpe_mm': 51.8,  # fully supervised
      'ss_rt_mpjpe_mm': 76.6,  # self-supervised with R/t
      'ss_n_mpjpe_mm': 78.8,  # self-supervised without R/t (Procrustes-scale N-MPJPE)
      'ss_gt2d_mpjpe_mm': 55.0,  # self-supervised, triangulating GT 2D
      'ss_s1_mpjpe_mm': 65.3,  # self-supervised trained on S1 only
      'ss_refine_mpjpe_mm': 60.5,  # self-supervised + refinement unit
    },
    'mpii_teacher_pckh': 88.3,  # MPII integral R50 (R18 84.7, R34 86.3)
  },
}


def get_config(arg: str | None = None):
  flags = {m: False for m in MODES}
  flags['cpu'] = False
  a, c = common.start(arg, 'epipolarpose', VARIANTS, **flags)
  chosen = [m for m in MODES if a[m]]
  if len(chosen) > 1:
    raise ValueError(f'choose one EpipolarPose mode, got {chosen}; valid: {", ".join(MODES)}')
  mode = chosen[0] if chosen else 'sup'
  multi = mode in ('ss', 'ss_rt')
  c.method.name = 'epipolarpose'
  with c.method.kwargs.unlocked():  # every key of jaxpose.methods.epipolarpose.DEFAULTS
    c.method.kwargs.update(
      mode=mode,
      z_weight=1.0,
      labels='',  # ss/ss_rt: the pseudo-label file (`jaxpose pseudolabel` writes it)
      teacher='',  # ss/ss_rt: the teacher workdir `jaxpose pseudolabel` runs
      pseudo_estimator='ransac',
      pseudo_pool='subject',  # one relative pose per camera pair and subject
      pseudo_threshold_px=10.0,
      pseudo_triangulation='',  # the paper's: polynomial (ss), iterative_ls (ss_rt)
      pss_k=(50, 100),
      pss_centers='',  # '' = k-means of the training poses, cached under the data dir
      refine_hidden=1024,
      refine_dropout=0.5,
    )
  if a.data == 'h36m':  # H36M images: no builder yet (module docstring)
    c.data = common.data_block(name='h36m_images', skeleton='h36m17', num_joints=17, fps=50.0)
  else:
    c.data = common.dataset(a.data)
  c.data.update(
    flip_aug=False,
    batch_size=16 if multi else (64 if mode == 'refine' else 32),  # ss: 16 pairs = 32 crops
    eval_batch_size=32,
  )
  c.data.image.update(
    size=256, views=2 if multi else 1, scale_aug=0.25, rot_aug_deg=30.0, rot_prob=0.6
  )
  c.data.image.update(color_aug=0.2, occlusion=1.0, occluder_max=7, part_labels=False)
  c.optim.update(name='adam', lr=1e-3, weight_decay=0.0)
  c.schedule.update(type='multistep_epoch', decay=0.1, milestones=(90, 120), warmup_steps=0)
  c.train.epochs = 140
  c.eval.flip_test = False
  if mode == 'teacher':
    c.train.best_metric = 'err2d_px'
  if mode == 'refine':  # the official refiner: Adam 1e-3, batch 64, 200 epochs, clip 1
    c.optim.grad_clip = 1.0
    c.schedule.update(type='constant', milestones=())
    c.train.epochs = 200
  if a.cpu:
    with c.model.kwargs.unlocked():
      c.model.kwargs.update(CPU_MODEL)
    c.data.image.update(size=CPU_SIZE, occlusion=0.0)
  if a.smoke:
    smoke(c)
  return common.locked(c)


def smoke(c):
  """A tiny network on 64 x 64 crops of deepmimic_render for a few steps (seconds on a CPU)."""
  with c.model.kwargs.unlocked():
    c.model.kwargs.update(SMOKE_MODEL)
  with c.method.kwargs.unlocked():
    c.method.kwargs.pss_k = (4, 8)
    c.method.kwargs.refine_hidden = 64
  c.data.update(name='deepmimic_render', config='tiny', fps=12.5)
  c.data.batch_size = 8  # ss: 8 view pairs (16 crops); divisible by the tests' 8 devices
  c.data.eval_batch_size = 8
  c.data.image.update(size=SMOKE_SIZE, occlusion=0.0)
  c.train.epochs, c.train.total_steps = 0, 4
  c.train.log_every, c.train.ckpt_every, c.train.eval_every = 2, 2, 0
  c.eval.max_batches = 2
  return c


def get_sweep(arg: str | None = None):
  """The paper's ablation: fully supervised against self-supervised (with and without R/t), each
  ResNet depth. Run `jaxpose train --config ...:r50,teacher` and `jaxpose pseudolabel` first
  (module docstring); the ss runs read method.kwargs.labels (pass it and init_from with the sweep's
  extra flags). With 'smoke' in arg the smoke batch sizes are kept (8 crops, 8 pairs)."""
  smoke_run = 'smoke' in (arg or '').split(',')
  single, pairs = (8, 8) if smoke_run else (32, 16)
  modes = [
    {'method.kwargs.mode': 'sup', 'data.image.views': 1, 'data.batch_size': single},
    {'method.kwargs.mode': 'ss', 'data.image.views': 2, 'data.batch_size': pairs},
    {'method.kwargs.mode': 'ss_rt', 'data.image.views': 2, 'data.batch_size': pairs},
  ]
  return common.product(common.sweep('model.variant', list(VARIANTS)), modes)
