"""DSR (Dwivedi, Athanasiou, Kocabas, Black, ICCV 2021, arXiv:2110.03480): an HMR body regressor
trained with SPIN's losses plus differentiable semantic rendering (DSR-MC, DSR-C).

Official code: github.com/saidwivedi/DSR @ 7d55d173 (research/dsr.md). Network
`jaxpose/models/dsr.py` (ResNet-50 + SPIN's iterative regressor, 26,977,501 parameters), method
`jaxpose/methods/dsr.py` (loss, evaluation), renderer `jaxpose/render` (SoftRas semantics).

Arg: 'variant[,data=name][,smoke]' with variant r50 (the only one) and data deepmimic_smpl_render
(the default and the only image dataset with bodies and part labels here).

Run book:
  jaxpose train --config configs/dsr.py --workdir runs/dsr
    The official recipe (configs/dsr_train.cfg): 224 px SPIN crops, Adam lr 3e-5, weight decay 0,
    batch 128, 50 epochs, loss 60 x (5 kp2d + 5 kp3d + 1 pose + 0.001 betas + cam + 0.1 DSR-MC +
    0.1 DSR-C), nIoU row-wise (the official), sigma 1e-5, gamma 0.1; SPIN augmentation (flip 0.5,
    rotation N(0, 30 deg) with p 0.4, scale 0.25, colour x U(0.6, 1.4)). Here on the embedded
    `deepmimic_smpl_render` (the synthetic 400-vertex body rendered with part labels, dressed as
    Graphonomy labels by `methods.dsr.PART_TO_GRPH`, prior from its part segmentation). DSR's
    datasets (H36M, COCO-EFT, 3DHP, 3DPW with Graphonomy parsing, real SMPL, semantic_prior.npy)
    are licence-gated and have no image builder here: with the user's SMPL files pass
    `--config.method.kwargs.body=<SMPL .pkl> --config.method.kwargs.regressor_h36m=<J_regressor_h36m.npy>
    --config.method.kwargs.prior=<semantic_prior.npy>`. Hours on one GPU for 50 epochs of the
    embedded data (384 frames x 4 views); the paper's numbers (REFERENCE) need the real data.
  jaxpose train --config configs/dsr.py:smoke --workdir /tmp/dsr_smoke
    Seconds on a CPU: ResNet-18 of width 8, head 16, 32 px crops of deepmimic_smpl_render/tiny.
  jaxpose sweep --config configs/dsr.py:smoke --workdir runs/dsr_ablation
    The ablation (get_sweep): with and without the DSR losses. experiments/dsr_ablation runs it
    at a CPU size and reports MPJPE, PA-MPJPE and PVE side by side.

Evaluation: MPJPE and PA-MPJPE of the mesh-regressed H36M-17 (pelvis-centred, mm; the H36M
per-action protocol over the test clips), PVE and PA-PVE of the mesh (mm, pelvis-aligned: the
official PVE compares un-aligned model-frame vertices, which camera-frame data cannot).
Deviations: methods/dsr.py `loss_fn` (H36M-17 keypoint terms, DSR terms from the first step,
pixel thresholds scaled with the crop).
"""

from __future__ import annotations

from configs import common

VARIANTS = ('r50',)
DATASETS = ('deepmimic_smpl_render',)
CROP = 224
# The smoke run: the model's TEST_OVERRIDES (ResNet-18 of width 8, head 16) at 32 px crops.
SMOKE_SIZE = 32
SMOKE_MODEL = {'depth': 18, 'width': 8, 'hidden': 16, 'img_res': SMOKE_SIZE}
OFFICIAL_FOCAL = 5000.0  # px at 224 px crops


def focal_for(size: int) -> float:
  """The focal length (px) that keeps DSR's crop camera at another crop size: 5000 x S / 224, so
  the predicted depth (2 f / (S s), about 50 m) stays inside SoftRas' far plane (100)."""
  return OFFICIAL_FOCAL * size / CROP


# research/dsr.md section 4: the PA-MPJPE values are verified, MPJPE and PVE recalled.
REFERENCE = {
  'source': 'DSR, ICCV 2021 (arXiv 2110.03480), Table 1 via research/dsr.md section 4 (3DPW and '
  'H36M PA-MPJPE verified against a public benchmark aggregator; MPJPE and PVE recalled, '
  'unverified); checkpoint-to-row assignment (with/without 3DPW training) unverified',
  'r50': {
    'pw3d': {'mpjpe_mm': 85.7, 'p_mpjpe_mm': 51.7, 'pve_mm': 99.5},
    'h36m_p2': {'mpjpe_mm': 60.9, 'p_mpjpe_mm': 40.3},
  },
}
METHOD_KWARGS = dict(
  body='small',
  keypoint=5.0,
  keypoint_3d=5.0,
  pose=1.0,
  betas=0.001,
  vertices=0.0,
  cam=1.0,
  betas_prior=0.0,
  dsr_mc=0.1,
  dsr_c=0.1,
  loss_weight=60.0,
  niou='rowwise',
  sigma=1e-5,
  gamma=0.1,
)


def get_config(arg: str | None = None):
  a, c = common.start(arg, 'dsr', VARIANTS)
  data = 'deepmimic_smpl_render' if a.data == 'h36m' else a.data  # 'h36m': the default arg
  if data not in DATASETS:
    raise ValueError(f'dsr: data={a.data!r} has no image builder with bodies; valid: {DATASETS}')
  c.method.name = 'dsr'
  with c.method.kwargs.unlocked():
    c.method.kwargs.update(METHOD_KWARGS)
  with c.model.kwargs.unlocked():
    c.model.kwargs.update(img_res=CROP, focal_length=OFFICIAL_FOCAL)
  c.data = common.dataset(data, flip_aug=True, batch_size=128, eval_batch_size=128)
  c.data.image.update(
    size=CROP,
    crop='box',
    bbox_mm=2000.0,
    scale_aug=0.25,
    rot_aug_deg=30.0,
    rot_prob=0.4,
    color_aug=0.4,
    occlusion=0.0,
    part_labels=True,
  )
  c.optim.update(name='adam', lr=3e-5, weight_decay=0.0)
  c.schedule.update(type='constant', warmup_steps=0)
  c.train.epochs = 50
  c.eval.flip_test = False
  if a.smoke:
    smoke(c)
  return common.locked(c)


def smoke(c):
  """A tiny network on 32 x 32 crops of deepmimic_smpl_render/tiny for a few steps."""
  with c.model.kwargs.unlocked():
    c.model.kwargs.update(SMOKE_MODEL, focal_length=focal_for(SMOKE_SIZE))
  c.data.update(config='tiny', batch_size=8, eval_batch_size=8)
  c.data.image.update(size=SMOKE_SIZE)
  c.optim.lr = 1e-4
  c.train.epochs, c.train.total_steps = 0, 4
  c.train.log_every, c.train.ckpt_every, c.train.eval_every = 2, 2, 0
  c.eval.max_batches = 2
  return c


def get_sweep(arg: str | None = None):
  """The ablation: the SPIN-style losses alone against SPIN + DSR-MC + DSR-C (paper Table 4's
  question), on whatever config `arg` names (the run book's `:smoke` for a quick look)."""
  del arg
  return common.zipit(
    common.sweep('method.kwargs.dsr_mc', [0.0, 0.1]),
    common.sweep('method.kwargs.dsr_c', [0.0, 0.1]),
  )
