"""PMCE training and evaluation in the default trainer: pose stream, then the co-evolution decoder.

Paper: You, Liu, Li, Wang, Yang, "Co-Evolution of Pose and Mesh for 3D Human Body Estimation from
Video", ICCV 2023, arXiv:2308.10305. Official code: github.com/kasvii/PMCE at commit
0f4075a7ef228e13382d65dbc67bdd3ce027cf4f (`lib/core/base.py` trainers, `lib/core/loss.py`,
`lib/noise_utils.py`, `data/PW3D/dataset.py` evaluation), MIT. Spec: research/pmce.md sections 3
and 5. The network is `jaxpose.models.pmce.Model`; no code was copied.

The recipe (`config.method.kwargs`, defaults in `DEFAULTS`):
  stage 'pose'  stage 1 (official `PoseEst`): the pose stream alone (only its parameters exist),
                loss L1(pose3d, gt) in mm on the supervised middle frame.
  stage 'mesh'  stage 2 (official `PMCE`): the whole model; `config.init_from.path` (a stage-'pose'
                or stage-'both' workdir/checkpoint) supplies the pose stream (`init_variables`
                copies the `pose_lifter` subtree; a checkpoint that also has `pose_mesh_coevo` is
                taken whole). As in the official code the pose stream keeps training jointly
                (the official optimiser gets `model.parameters()`, nothing is frozen);
                `freeze_pose_stream=True` moves it out of the `params` collection into the
                `pmce_frozen` collection, so no optimiser (weight decay included) touches it.
  stage 'both'  one run of the two stages: the first `pose_steps` optimiser steps are stage 1
                (the decoder gets no gradient), the rest stage 2. The step is counted in the
                `pmce_state` collection (checkpointed with the run). Unlike two runs, the Adam
                moments and the learning-rate schedule carry over from stage 1 to stage 2.
  The two-run recipe (faithful):
    jaxpose train --config configs/pmce.py:<args>,stage=pose --workdir runs/pmce_pose
    jaxpose train --config configs/pmce.py:<args>,stage=mesh --workdir runs/pmce_mesh \
        --config.init_from.path=runs/pmce_pose

Inputs. Windows of `data.frames` = T + 2 frames in 'center' mode (T = model.num_frames, 16 in the
paper): training reads the middle T frames (supervised on their middle frame T // 2, as the
official code); evaluation also runs the two windows shifted by one frame, so every frame gets the
predictions of itself and its two neighbours and the acceleration error is per frame (the
evaluator aggregates (B, T_out) metrics only). `data.frames` = T works too (no `accel_mm`).
`data.window_targets` = True gives the neighbours' ground truth (`pose3d_cam_window`).

Image features. `features='zeros'` (the default): zero (B, T, D) features, because the embedded
`deepmimic_smpl` has no images; the image branch then only contributes biases and the model is a
2D -> pose -> mesh lifter. `features='batch'` reads `img_feat` (B, T', D) from the batch: per-frame
features precomputed by a frozen backbone (the official code uses SPIN's ResNet-50 average pool,
2048-d, on 224 px crops; users bring SPIN's weights, `jaxpose.models.resnet` holds the backbone).
No dataset builder writes `img_feat` yet.

2D noise (`noise=True`, training only; official `noise_utils.synthesize_pose`, from Pose2Mesh):
per frame and joint one of jitter / miss / inversion / good is drawn with the official
probabilities for a person with more than 10 visible joints, and the joint is moved by a radius
drawn between the OKS distances d(ks) = sqrt(-2 area (2 sigma)^2 ln ks): jitter U(d85, d50) around
the joint, miss U(d50, d10) around it (or, 1 time in 5 when the joint has a left/right partner,
around the partner), inversion U(0, d50) around the partner, good U(0, d85); swaps are off as in
the official code (`swap_prob = 0`). The official tables are for COCO-17; the H36M-17 joints use
the COCO class of the same body part (`NOISE_CLASS`). Deviations: the area is the joints' 2D
bounding box scaled by `noise_bbox_scale` per side (the official one is the annotated person box),
and the official rejection of candidates closer to another candidate source is left out. The
official H36M recipe trains on CPN detections instead; synthetic noise is its 3DPW recipe.

Losses (official `Trainer.train`, `lib/core/loss.py`; `jaxpose.body.mesh` holds the terms):
  stage 1: L1(pose3d, gt_lift) in mm (masked by `valid`).
  stage 2: L1(mesh, gt_mesh) (metres, masked by has_smpl & valid)
           + normal_weight (0.1) x normal-vector loss + edge_weight (20) x edge-length loss (the
           edge term from stage-2 step `edge_start_steps` on; official: after `edge_loss_start`
           epochs) + joint_weight (1e-3) x [L1(J_h36m mesh, J_h36m gt_mesh) + L1(evo_pose, gt)
           + L1(pose3d, gt)] with joints in mm. Masked entries count as zeros in the means, as
           the official `CoordLoss`. PMCE predicts no SMPL parameters: the body parameters of the
           data only make the ground-truth meshes (`jaxpose.body.forward`, root-relative on the
           mesh-regressed H36M pelvis, the same root as `pose3d_cam`).

Evaluation (official `PW3D.evaluate`): `predict_batch` gives the H36M-17 joints regressed from the
predicted mesh (stage 'pose': the pose stream's output), so the engine's MPJPE / P-MPJPE use all 17
joints; `eval_metrics` adds per frame, in mm: `mpjpe14_mm`, `pmpjpe14_mm` (PA-MPJPE on the paper's 14 H36M
joints), `accel_mm` (mm / frame^2 on the 14 joints; 0 on the first and last frame of a sequence,
as the official zero padding), and in the mesh stages `mpvpe_mm`, `pa_mpvpe_mm` (meshes aligned on
the body model's root joint, the SMPL pelvis). The acceleration ground truth is `pose3d_cam_window`
(the dataset's H36M-17), so with another body than the dataset's (the smoke run's small synthetic
body) it differs from the mesh-regressed joints by the two regressors' offset (~2 mm, nearly
constant in time).

Body model (`body`): 'synthetic:small' (400 vertices, tests and smoke), 'synthetic:full' (6890,
the shape of SMPL), or the path of an SMPL `.pkl`/`.npz` with `h36m_regressor` the path of
`J_regressor_h36m_correct.npy`. The decoder template (`vj_relation`, coarse vertex count) comes
from the body: its template mesh down-sampled twice by 4 (`jaxpose.body.mesh.mesh_sampling`, or the
official `mesh_downsampling.npz` given as `mesh_downsampling`), each coarse vertex mapped to its
nearest H36M joint. The official template is `smpl_mean_vertices.npy` (the mean posed mesh); here
the body's rest template.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections as mlc
import numpy as np

from jaxpose import body as body_lib
from jaxpose import metrics, models
from jaxpose.body import mesh as mesh_lib
from jaxpose.methods._kwargs import settings as _settings
from jaxpose.methods.base import Method
from jaxpose.metrics import mesh as mesh_metrics

DEFAULTS: dict[str, Any] = dict(
  stage='both',  # 'pose' | 'mesh' | 'both'
  pose_steps=0,  # stage 'both': optimiser steps of stage 1 before stage 2
  body='synthetic:full',  # 'synthetic:small' | 'synthetic:full' | path of an SMPL .pkl/.npz
  h36m_regressor='',  # (17, V) .npy for a body file ('' for the synthetic bodies)
  mesh_downsampling='',  # official mesh_downsampling.npz ('' = computed from the body)
  features='zeros',  # 'zeros' | 'batch' (batch['img_feat'] (B, T, D))
  noise=True,  # 2D noise synthesis on the training inputs
  noise_bbox_scale=1.2,  # person box = joints' box x this, per side
  normal_weight=0.1,
  edge_weight=20.0,
  joint_weight=1e-3,
  edge_start_steps=0,  # stage-2 optimiser steps before the edge-length term starts
  freeze_pose_stream=False,  # stage 'mesh': keep the init_from pose stream fixed
)
STAGES = ('pose', 'mesh', 'both')
# The paper's 14 evaluation joints of H36M-17 (no pelvis, spine, neck/nose).
EVAL_JOINTS = (1, 2, 3, 4, 5, 6, 8, 10, 11, 12, 13, 14, 15, 16)

# 2D noise: per H36M-17 joint the COCO class whose official numbers it takes, and the left/right
# partner (-1: none). COCO OKS sigmas (x 10) and the probabilities for > 10 visible joints.
NOISE_CLASS = (
  'hip',  # pelvis
  'hip',
  'knee',
  'ankle',  # right leg
  'hip',
  'knee',
  'ankle',  # left leg
  'hip',  # spine
  'shoulder',  # thorax
  'nose',  # neck/nose
  'ear',  # head
  'shoulder',
  'elbow',
  'wrist',  # left arm
  'shoulder',
  'elbow',
  'wrist',  # right arm
)
NOISE_PARTNER = (-1, 4, 5, 6, 1, 2, 3, -1, -1, -1, -1, 14, 15, 16, 11, 12, 13)
# class: (sigma, jitter, miss, inversion)
_COCO_NOISE = {
  'nose': (0.026, 0.10, 0.02, 0.01),
  'ear': (0.035, 0.15, 0.02, 0.01),
  'shoulder': (0.079, 0.15, 0.05, 0.03),
  'elbow': (0.072, 0.15, 0.10, 0.03),
  'wrist': (0.062, 0.15, 0.10, 0.03),
  'hip': (0.107, 0.20, 0.10, 0.06),
  'knee': (0.087, 0.10, 0.10, 0.06),
  'ankle': (0.089, 0.10, 0.05, 0.06),
}


def settings(config: mlc.ConfigDict) -> dict[str, Any]:
  """`config.method.kwargs` over `DEFAULTS` (unknown keys and stages raise)."""
  s = _settings(config, DEFAULTS, 'pmce')
  if s['stage'] not in STAGES:
    raise ValueError(f'method.kwargs.stage={s["stage"]!r}; valid: {", ".join(STAGES)}')
  if s['features'] not in ('zeros', 'batch'):
    raise ValueError(f"method.kwargs.features={s['features']!r}; valid: 'zeros', 'batch'")
  if s['freeze_pose_stream'] and s['stage'] != 'mesh':
    raise ValueError("method.kwargs.freeze_pose_stream needs stage='mesh' (a stage-2 run)")
  return s


# ----------------------------------------------------------------------------------------------
# Body model and decoder template.


@functools.cache
def body_setup(
  body: str, h36m_regressor: str = '', mesh_downsampling: str = ''
) -> tuple[body_lib.BodyModel, np.ndarray, tuple[int, ...]]:
  """(body model, H36M-17 regressor (17, V) float32, vj_relation (V_coarse,)) of `body`.

  vj_relation: for each vertex of the body's template down-sampled twice by 4 (or by the given
  official matrices), the index of its nearest H36M-17 template joint (`models.pmce.nearest_joints`).
  """
  # Concrete arrays even when first called inside a trace (the result is cached).
  with jax.ensure_compile_time_eval():
    if body.startswith('synthetic:'):
      variant = body.split(':', 1)[1]
      model = body_lib.synthetic_model(variant)
      reg = body_lib.synthetic.synthetic_regressors(variant)['J_regressor_h36m']
    else:
      if not h36m_regressor:
        raise ValueError(f'method.kwargs.body={body!r} needs method.kwargs.h36m_regressor (a .npy)')
      model = body_lib.load_model(body)
      reg = body_lib.regressors.load_regressor(
        h36m_regressor, num_vertices=model.num_vertices, num_joints=17
      )
    reg = np.asarray(reg, np.float32)
    template = np.asarray(model.v_template, np.float64)
    if mesh_downsampling:
      sampling = mesh_lib.load_mesh_sampling(mesh_downsampling)
      coarse = np.asarray(sampling.downsample(template, 0, 2))
    else:
      coarse = mesh_lib.mesh_sampling(template, np.asarray(model.faces)).vertices[2]
    vj = models.get_module('pmce').nearest_joints(reg @ template, coarse)
  return model, reg, vj


def _body(s: Mapping[str, Any]):
  return body_setup(s['body'], s['h36m_regressor'], s['mesh_downsampling'])


def make_model(config: mlc.ConfigDict):
  """`models.pmce.Model` of config.model, with the decoder sized to the body: num_vertices and
  vj_relation from the down-sampled template, num_out_vertices = the body's vertex count.

  Raises:
    ValueError: data.frames is neither num_frames nor num_frames + 2, or data.num_joints differs.
  """
  s = settings(config)
  body, _, vj = _body(s)
  kw = dict(config.model.kwargs)
  kw.update(num_vertices=len(vj), num_out_vertices=body.num_vertices, vj_relation=vj)
  model = models.build(config.model.name, config.model.variant or None, **kw)
  if config.data.frames not in (model.num_frames, model.num_frames + 2):
    raise ValueError(
      f'PMCE: data.frames={config.data.frames} must be model num_frames={model.num_frames} '
      f'or num_frames + 2 (the acceleration context)'
    )
  if config.data.num_joints != model.num_joints:
    raise ValueError(
      f'PMCE: data.num_joints={config.data.num_joints} != model num_joints={model.num_joints}'
    )
  return model


def init_inputs(config: mlc.ConfigDict, model) -> tuple[jax.Array, jax.Array]:
  """Zero (pose2d (1, T, J, 2), img_feat (1, T, D)) for `model.init`."""
  del config
  return models.example_inputs(model, 1)


def init_variables(config: mlc.ConfigDict, model, loaded: Mapping[str, Any] | None):
  """The variables of a fresh run.

  stage 'pose': only the pose stream (`model.init(..., method='lift')`). Otherwise the whole model,
  with the `init_from` checkpoint's `pose_lifter` (and `pose_mesh_coevo` when present) copied in;
  with freeze_pose_stream the pose stream goes to the `pmce_frozen` collection. Every stage adds
  `pmce_state` = {'step': () int32}, the method's own step counter.

  Raises:
    ValueError: freeze_pose_stream without init_from, or a checkpoint whose subtrees do not match.
  """
  s = settings(config)
  if s['freeze_pose_stream'] and loaded is None:
    raise ValueError('PMCE freeze_pose_stream needs config.init_from.path (a stage-1 run)')
  key = jax.random.fold_in(jax.random.PRNGKey(config.seed), 7)
  inputs = init_inputs(config, model)
  if s['stage'] == 'pose':
    fresh = model.init({'params': key, 'dropout': key}, *inputs, train=False, method='lift')
  else:
    fresh = model.init({'params': key, 'dropout': key}, *inputs, train=False)
  params = dict(fresh['params'])
  if loaded is not None:
    got = dict(loaded['params'])
    if 'joint_embed' in got:  # a bare PoseStream (e.g. converted official pose_*.pth.tar)
      got = {'pose_lifter': got}
    for name in ('pose_lifter', 'pose_mesh_coevo'):
      if name in got and name in params:
        want = jax.tree.map(np.shape, params[name])
        have = jax.tree.map(np.shape, got[name])
        if want != have:
          raise ValueError(
            f'PMCE init_from {config.init_from.path}: {name} does not match the model '
            f'(model {jax.tree.leaves(want)[:3]}..., checkpoint {jax.tree.leaves(have)[:3]}...)'
          )
        params[name] = jax.tree.map(jnp.asarray, got[name])
    if 'pose_lifter' not in got:
      raise ValueError(
        f'PMCE init_from {config.init_from.path}: no pose_lifter parameters (found {sorted(got)})'
      )
  out: dict[str, Any] = {'pmce_state': {'step': jnp.zeros((), jnp.int32)}}
  if s['freeze_pose_stream']:
    out['pmce_frozen'] = {'pose_lifter': params.pop('pose_lifter')}
  out['params'] = params
  return out


# ----------------------------------------------------------------------------------------------
# 2D noise.


def noise_tables(num_joints: int = 17) -> dict[str, np.ndarray]:
  """Per-joint (J,) arrays of the H36M-17 noise model: sigma, p_jitter, p_miss, p_inv, partner."""
  if num_joints != len(NOISE_CLASS):
    raise ValueError(f'PMCE 2D noise is defined for H36M-17 inputs, got {num_joints} joints')
  rows = np.array([_COCO_NOISE[c] for c in NOISE_CLASS], np.float32)
  partner = np.array(NOISE_PARTNER)
  p_inv = np.where(partner >= 0, rows[:, 3], 0.0).astype(np.float32)
  return {
    'sigma': rows[:, 0],
    'p_jitter': rows[:, 1],
    'p_miss': rows[:, 2],
    'p_inv': p_inv,
    'partner': np.where(partner >= 0, partner, np.arange(len(partner))),
    'has_partner': partner >= 0,
  }


def synthesize_2d_noise(rng: jax.Array, kp2d: jax.Array, bbox_scale: float = 1.2) -> jax.Array:
  """Detector-like errors on clean 2D joints (module docstring; official `synthesize_pose`).

  Args:
    rng: a PRNG key.
    kp2d: (..., J, 2) H36M-17 joints in any isotropic unit (normalised screen coordinates here).
    bbox_scale: the person box is the joints' box scaled by this per side (its area sets the OKS
      distances).

  Returns:
    (..., J, 2) noisy joints, same unit.
  """
  t = noise_tables(kp2d.shape[-2])
  lo, hi = kp2d.min(axis=-2), kp2d.max(axis=-2)  # (..., 2)
  area = jnp.prod((hi - lo) * bbox_scale, axis=-1)[..., None]  # (..., 1)
  var = (2.0 * jnp.asarray(t['sigma'])) ** 2

  def dist(ks):
    return jnp.sqrt(-2.0 * area * var * np.log(ks))  # (..., J)

  d10, d50, d85 = dist(0.10), dist(0.50), dist(0.85)
  p = jnp.stack([t['p_jitter'], t['p_miss'], t['p_inv']], -1)  # (J, 3)
  p = jnp.concatenate([p, 1.0 - p.sum(-1, keepdims=True)], -1)  # + good
  k_type, k_r, k_a, k_src = jax.random.split(rng, 4)
  shape = kp2d.shape[:-1]
  kind = jax.random.categorical(k_type, jnp.log(jnp.broadcast_to(p, (*shape, 4))))
  u = jax.random.uniform(k_r, shape)
  zero = jnp.zeros_like(d50)
  r_lo = jnp.select([kind == 0, kind == 1, kind == 2], [d85, d50, zero], zero)
  r_hi = jnp.select([kind == 0, kind == 1, kind == 2], [d50, d10, d50], d85)
  radius = r_lo + u * (r_hi - r_lo)
  angle = jax.random.uniform(k_a, shape, maxval=2 * np.pi)
  partner = kp2d[..., jnp.asarray(t['partner']), :]
  miss_at_partner = jax.random.uniform(k_src, shape) < 0.2
  at_partner = (kind == 2) | ((kind == 1) & miss_at_partner & jnp.asarray(t['has_partner']))
  centre = jnp.where(at_partner[..., None], partner, kp2d)
  return centre + radius[..., None] * jnp.stack([jnp.cos(angle), jnp.sin(angle)], -1)


# ----------------------------------------------------------------------------------------------
# Inputs, forward, ground truth.


def _context(model, kp2d_norm: jax.Array) -> int:
  """Frames of context each side of the model's T-frame window (0 or 1)."""
  extra = kp2d_norm.shape[1] - model.num_frames
  if extra not in (0, 2):
    raise ValueError(
      f'PMCE: windows of {kp2d_norm.shape[1]} frames, the model takes {model.num_frames} '
      '(data.frames must be num_frames or num_frames + 2)'
    )
  return extra // 2


def _inputs(model, batch, s, offset: int) -> tuple[jax.Array, jax.Array]:
  """(pose2d (B, T, J, 2), img_feat (B, T, D)) of the T-frame sub-window starting at `offset`."""
  t = model.num_frames
  pose2d = batch['kp2d_norm'][:, offset : offset + t, :, :2]
  if s['features'] == 'batch':
    if 'img_feat' not in batch:
      raise ValueError("PMCE features='batch' but the batch has no 'img_feat' (B, T, D)")
    feat = batch['img_feat'][:, offset : offset + t]
  else:
    feat = jnp.zeros((pose2d.shape[0], t, model.feat_dim), pose2d.dtype)
  return pose2d, feat


def _variables(variables: Mapping[str, Any]) -> dict[str, Any]:
  """{'params': trainable + frozen} for `model.apply` (drops the method's own collections)."""
  return {'params': {**variables['params'], **variables.get('pmce_frozen', {})}}


def _eval_stage(s) -> str:
  return 'pose' if s['stage'] == 'pose' else 'mesh'


def gt_mesh(s, batch) -> jax.Array:
  """(B, V, 3) metres: the body of each window's supervised frame, root-relative on the
  mesh-regressed H36M pelvis (the root of `pose3d_cam`)."""
  body, reg, _ = _body(s)
  out = body_lib.forward(body, batch['body_rotmat'][:, 0], batch['body_betas'][:, 0])
  verts = out.vertices
  return verts - jnp.einsum('v,bvc->bc', jnp.asarray(reg[0]), verts)[:, None]


def _regress(reg: np.ndarray, verts: jax.Array) -> jax.Array:
  return jnp.einsum('kv,bvc->bkc', jnp.asarray(reg), verts)


# ----------------------------------------------------------------------------------------------
# Losses.


def pose_loss(pose3d_mm: jax.Array, gt_m: jax.Array, valid: jax.Array) -> jax.Array:
  """Stage 1: official CoordLoss in mm. pose3d_mm (B, J, 3), gt_m (B, J, 3) metres, valid (B,)."""
  return mesh_lib.coord_loss(pose3d_mm, gt_m * 1000.0, valid[:, None, None]).mean()


def mesh_losses(
  out: Mapping[str, jax.Array],
  gt_mesh_m: jax.Array,
  gt_lift_m: jax.Array,
  valid: jax.Array,
  mesh_valid: jax.Array,
  faces: np.ndarray,
  reg: np.ndarray,
  weights: Mapping[str, float],
  edge_on: jax.Array | bool = True,
) -> dict[str, jax.Array]:
  """Stage-2 terms, each a () scalar already weighted (official `Trainer.train`).

  Args:
    out: the model's {'pose3d' (B, J, 3) mm, 'evo_pose' (B, J, 3) m, 'mesh' (B, V, 3) m}.
    gt_mesh_m: (B, V, 3) metres, root-relative.
    gt_lift_m: (B, J, 3) metres, root-relative 3D joints.
    valid, mesh_valid: (B,) masks of the joint and mesh targets.
    faces: (F, 3) triangles; reg: (J, V) mesh -> joint regressor.
    weights: normal_weight, edge_weight, joint_weight.
    edge_on: whether the edge-length term counts yet.

  Returns:
    {'mesh', 'normal', 'edge', 'mesh_joint', 'evo_joint', 'lift_joint'}.
  """
  vm, jm = mesh_valid[:, None, None], valid[:, None, None]
  gt_mm = gt_lift_m * 1000.0
  pred = out['mesh']
  wj = weights['joint_weight']
  edge = mesh_lib.edge_length_loss(pred, gt_mesh_m, faces).mean()
  return {
    'mesh': mesh_lib.coord_loss(pred, gt_mesh_m, vm).mean(),
    'normal': weights['normal_weight'] * mesh_lib.normal_vector_loss(pred, gt_mesh_m, faces).mean(),
    'edge': jnp.where(edge_on, weights['edge_weight'] * edge, 0.0),
    'mesh_joint': wj
    * mesh_lib.coord_loss(_regress(reg, pred) * 1000, _regress(reg, gt_mesh_m) * 1000, vm).mean(),
    'evo_joint': wj * mesh_lib.coord_loss(out['evo_pose'] * 1000.0, gt_mm, jm).mean(),
    'lift_joint': wj * mesh_lib.coord_loss(out['pose3d'], gt_mm, jm).mean(),
  }


_TERMS = ('pose', 'mesh', 'normal', 'edge', 'mesh_joint', 'evo_joint', 'lift_joint')


def loss_fn(model, params, model_state, batch, rng, config: mlc.ConfigDict):
  """Engine hook: the stage's loss (module docstring) on the window's supervised frame.

  Returns:
    (loss, (scalars {'loss', 'loss/<term>', 'stage'}, model_state with pmce_state.step + 1)).
  """
  s = settings(config)
  step = model_state['pmce_state']['step']
  k_noise, k_drop = jax.random.split(rng)
  rngs = {'dropout': k_drop}
  pose2d, feat = _inputs(model, batch, s, _context(model, batch['kp2d_norm']))
  if s['noise']:
    pose2d = synthesize_2d_noise(k_noise, pose2d, s['noise_bbox_scale'])
  variables = {'params': {**params, **model_state.get('pmce_frozen', {})}}
  valid = batch['valid'][:, 0].astype(jnp.float32)
  gt_lift = batch['pose3d_cam'][:, 0]
  zero = jnp.zeros((), jnp.float32)

  def stage1(_):
    pose3d = model.apply(variables, pose2d, feat, train=True, rngs=rngs, method='lift')
    terms = dict.fromkeys(_TERMS, zero)
    terms['pose'] = pose_loss(pose3d, gt_lift, valid)
    return terms

  def stage2(_):
    body, reg, _ = _body(s)
    out = model.apply(variables, pose2d, feat, train=True, rngs=rngs)
    mesh_valid = valid * batch['has_smpl'][:, 0].astype(jnp.float32)
    mesh_step = step - (s['pose_steps'] if s['stage'] == 'both' else 0)
    terms = mesh_losses(
      out,
      gt_mesh(s, batch),
      gt_lift,
      valid,
      mesh_valid,
      np.asarray(body.faces),
      reg,
      s,
      edge_on=mesh_step >= s['edge_start_steps'],
    )
    return {'pose': zero, **terms}

  if s['stage'] == 'pose':
    terms, in_stage2 = stage1(None), zero
  elif s['stage'] == 'mesh':
    terms, in_stage2 = stage2(None), zero + 1.0
  else:
    in_stage2 = (step >= s['pose_steps']).astype(jnp.float32)
    terms = jax.lax.cond(step >= s['pose_steps'], stage2, stage1, None)
  loss = sum(terms.values())
  scalars = {'loss': loss, 'stage': in_stage2 + 1.0, **{f'loss/{k}': v for k, v in terms.items()}}
  new_state = {**model_state, 'pmce_state': {'step': step + 1}}
  return loss, (scalars, new_state)


# ----------------------------------------------------------------------------------------------
# Prediction and evaluation.


def _forward(model, variables, pose2d, feat, stage: str) -> dict[str, jax.Array]:
  v = _variables(variables)
  if stage == 'pose':
    return {'pose3d': model.apply(v, pose2d, feat, train=False, method='lift')}
  return model.apply(v, pose2d, feat, train=False)


def _joints(out: Mapping[str, jax.Array], reg: np.ndarray) -> jax.Array:
  """(B, J, 3) metres, root-relative: regressed from the mesh, else the pose stream's (mm)."""
  if 'mesh' in out:
    j = _regress(reg, out['mesh'])
  else:
    j = out['pose3d'] / 1000.0
  return j - j[:, :1]


def predict_batch(model, variables, batch, config: mlc.ConfigDict) -> jax.Array:
  """Engine hook: (B, 1, J, 3) metres, root-relative, for the window's middle frame: H36M-17
  regressed from the predicted mesh (stage 'pose': the pose stream's output)."""
  s = settings(config)
  out = _forward(
    model,
    variables,
    *_inputs(model, batch, s, _context(model, batch['kp2d_norm'])),
    _eval_stage(s),
  )
  return _joints(out, _body(s)[1])[:, None]


def predict(model, variables, kp2d_norm: jax.Array, config: mlc.ConfigDict) -> jax.Array:
  """kp2d_norm (B, T or T + 2, J, C) -> (B, 1, J, 3) metres (image features: zeros unless the
  method reads them from a batch; use `predict_batch` then)."""
  return predict_batch(model, variables, {'kp2d_norm': kp2d_norm}, config)


def eval_metrics(model, variables, batch, config: mlc.ConfigDict) -> dict[str, jax.Array]:
  """Engine hook: per-frame (B, 1) metrics in mm (module docstring): mpjpe14_mm, pmpjpe14_mm,
  accel_mm (windows of T + 2 frames with window_targets), mpvpe_mm and pa_mpvpe_mm (mesh)."""
  s = settings(config)
  stage = _eval_stage(s)
  body, reg, _ = _body(s)
  ctx = _context(model, batch['kp2d_norm'])
  outs = [
    _forward(model, variables, *_inputs(model, batch, s, o), stage)
    for o in (range(3) if ctx else (0,))
  ]
  centre = outs[ctx]
  ev = jnp.asarray(EVAL_JOINTS)
  res = {}
  if stage == 'mesh':
    pred_mesh, gt = centre['mesh'], gt_mesh(s, batch)
    root = lambda v: jnp.einsum('v,bvc->bc', body.J_regressor[0], v)[:, None]
    pred_mesh, gt = pred_mesh - root(pred_mesh), gt - root(gt)
    res['mpvpe_mm'] = mesh_metrics.mpvpe(pred_mesh, gt) * 1000.0
    res['pa_mpvpe_mm'] = mesh_metrics.pa_mpvpe(pred_mesh, gt) * 1000.0
    gt_j = _joints({'mesh': gt}, reg)
  else:
    gt_j = batch['pose3d_cam'][:, 0] - batch['pose3d_cam'][:, 0, :1]
  pred_j = _joints(centre, reg)
  p14, g14 = pred_j[:, ev] * 1000.0, gt_j[:, ev] * 1000.0
  res['mpjpe14_mm'] = jax.vmap(metrics.mpjpe)(p14, g14)
  res['pmpjpe14_mm'] = jax.vmap(metrics.p_mpjpe)(p14, g14)
  if ctx and 'pose3d_cam_window' in batch:
    c = batch['pose3d_cam_window'].shape[1] // 2
    gt3 = batch['pose3d_cam_window'][:, c - 1 : c + 2]
    gt3 = (gt3 - gt3[:, :, :1])[:, :, ev] * 1000.0
    pred3 = jnp.stack([_joints(o, reg)[:, ev] for o in outs], 1) * 1000.0
    acc = mesh_metrics.accel_error(pred3, gt3)[:, 0]
    # First / last frame of a sequence: the clamped window repeats the frame; the official
    # evaluation pads these with 0.
    same = lambda a, b: jnp.all(a == b, axis=(-2, -1))
    edge = same(gt3[:, 0], gt3[:, 1]) | same(gt3[:, 2], gt3[:, 1])
    res['accel_mm'] = jnp.where(edge, 0.0, acc)
  return {k: v[:, None] for k, v in res.items()}


METHOD = Method(
  loss_fn=loss_fn,
  predict=predict,
  make_model=make_model,
  init_inputs=init_inputs,
  init_variables=init_variables,
  predict_batch=predict_batch,
  eval_metrics=eval_metrics,
)
