"""PoSynDA: multi-hypothesis pose synthesis domain adaptation (D3DP + LoRA + refiner).

Paper: Liu et al., "PoSynDA: Multi-Hypothesis Pose Synthesis Domain Adaptation for Robust 3D Human
Pose Estimation", ACM MM 2023 (arXiv 2308.09678). Code: github.com/hbing-l/PoSynDA @
d592dbac8a9a8f767de8f737449ed465ae99ace4 (D3DP's diffusion code + `common/lora.py` +
`common/weight.py` refiner + `h36m_3dhp_transfer.py`). Written from the notes in
shared/research/posynda.md; no official code is copied.

Pieces:
- the frozen D3DP denoiser (`jaxpose.models.d3dp`) with LoRA adapters on every attention `qkv` /
  `proj` (`jaxpose.models.layers.lora`, merged into the params before `apply`);
- the `Refiner` (a small post-norm transformer over the joints of each hypothesis, applied to every
  sampled pose) and the torch converters, in `jaxpose.models._posynda`;
- `sample_poses`: D3DP's one-jit DDIM sampler (differentiable: gradients reach the adapters), x1000
  (mm), then the refiner, then the root (joint 14 for 3DHP) zeroed;
- `target_losses`: JPMA reprojection selection against the target 2D in pixels, L = 0.5 L_2D + L_3D
  with the selected pose as a non-detached pseudo-label (as the official code);
- `redistribute_source`: target-specific source augmentation (source 3D poses placed at a depth
  and root position derived from a random target 2D pose's scale and root, reprojected with the
  target camera), and `source_losses` (0.1 L_2D + MPJPE to the source GT);
- `ema_update`: an EMA teacher. RECONSTRUCTED FROM THE PAPER: the released code has no teacher.
  With `teacher`, the target branch's 3D pseudo-label is the teacher's JPMA pose (no gradient) and
  the teacher follows the student with decay `ema_decay` after every step;
- `adaptation_loss`: both branches as one objective;
- engine hooks (`make_model`, `init_variables`, `train_iterator`, `loss_fn`, `predict`): the
  adaptation runs in the default trainer (`jaxpose train --config configs/posynda.py`), with
  checkpoints that hold both data streams' positions (`jaxpose.data.paired`), resume, evaluation
  and sweeps.

Protocol (`configs/posynda.py`): source H36M (CPN 2D, S1, S5-S8, 3D labels) cycled beside the
target 3DHP test sequences (GT 2D, no 3D labels in the losses; the GT root trajectory places the
hypotheses for the reprojection; transductive: the same sequences are evaluated). Per (target,
source) batch pair: H hypotheses (3), K steps (1), refiner, root zeroed; target: JPMA selection,
0.5 L_2D + L_3D; source: re-distributed to a random target clip's camera, depth and root,
0.1 L_2D + MPJPE. Evaluation: H = K = 1 (the official eval model), flip TTA, PCK / AUC / MPJPE
(the engine's 3DHP protocol).

Deviations: (1) the refiner's positional encoding is indexed by joint by default; the official code
indexes it by the pose's position in the flattened (b, k, h, t) batch (a bug), reproduced with
`official_batch_position_encoding=True`. (2) LoRA is merged into the kernel (x (W + s A B)), equal to
the official x W + s (x A) B up to rounding. (3) The official training script does not run
(undefined names); the adaptation here follows the paper/notes, with unit-consistent (mm, pixel)
re-distribution and the target clip's own camera (per-clip intrinsics from the batch). (4) One
optimiser step on the sum of the two branches per batch pair (official: one step per branch), on
L rather than the official L dL (`loss.backward(loss.detach())`, as D3DP). (5) Source 3D poses are
converted to the target's joint layout, and `denoiser_skeleton` converts the target 2D into the
layout the denoiser was trained in; the released script mixes H36M and 3DHP joint orders. (6) The
frozen denoiser samples without DropPath (official: DropPath 0.1 in the adaptation model); the
refiner's dropout (0.5) is on. (7) Padded and invalid target frames get zero weight in the losses.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxpose import models
from jaxpose.data import paired
from jaxpose.geometry import camera
from jaxpose.geometry import skeleton as skel
from jaxpose.methods import _kwargs, d3dp
from jaxpose.methods.base import Method
from jaxpose.methods.supervised import masked_mean
from jaxpose.metrics.pose import safe_norm
from jaxpose.models._posynda import REFINER, Refiner
from jaxpose.models.layers import lora
from jaxpose.models.layers.diffusion import sinusoid_table

ROOT_3DHP = 14
# method.kwargs keys and their defaults (the released recipe; research/posynda.md section 4).
DEFAULTS = {
  'lora_rank': 4,
  'lora_scale': 1.0,
  'num_hypotheses': 3,  # H during adaptation (K = num_steps)
  'num_steps': 1,
  'eval_hypotheses': 1,  # the official eval model: constructor defaults H = K = 1
  'eval_steps': 1,
  'num_timesteps': 1000,
  'scale': 1.0,
  'w_target_2d': 0.5,
  'w_target_3d': 1.0,
  'w_source_2d': 0.1,
  'w_source_3d': 1.0,
  'teacher': False,  # EMA teacher pseudo-labels (reconstructed from the paper)
  'ema_decay': 0.999,
  'refiner_dim': REFINER['dim'],
  'refiner_heads': REFINER['num_heads'],
  'refiner_hidden': REFINER['hidden'],
  'refiner_depth': REFINER['depth'],
  'refiner_dropout': REFINER['dropout'],
  'official_batch_position_encoding': False,
  'denoiser_skeleton': '',  # joint layout the denoiser was trained in ('' = the target's)
  'source': None,  # the source-domain data block (configs/common.py dataset(...))
  'seed': 0,  # evaluation noise
}


def merged_variables(variables, adapters, scale: float = 1.0):
  """Denoiser variables with the LoRA adapters merged into the params."""
  return {**variables, 'params': lora.merge(variables['params'], adapters, scale)}


def sample_poses(
  denoiser,
  den_vars,
  refiner: Refiner,
  ref_vars,
  kp2d: jax.Array,
  noise: jax.Array | None = None,
  key: jax.Array | None = None,
  *,
  num_hypotheses: int = 1,
  num_steps: int = 1,
  scale: float = 1.0,
  flip: bool = True,
  num_timesteps: int = 1000,
  skeleton: str = 'mpi3dhp17',
  root: int = ROOT_3DHP,
  train: bool = False,
  rng: jax.Array | None = None,
  denoiser_skeleton: str | None = None,
) -> jax.Array:
  """Hypotheses in mm, refined, root zeroed: (B, K, H, T, J, 3). Differentiable in both variables.

  Args:
    denoiser, den_vars: the D3DP denoiser and its (LoRA-merged) variables.
    refiner, ref_vars: the refiner and its variables.
    kp2d: (B, T, J, 2) normalised 2D input.
    noise: (K, B, H, T, J, 3) injected draws, or `key`.
    skeleton: joint layout of the flip test-time augmentation (3DHP: 'mpi3dhp17').
    root: joint set to 0 after the refiner (14 for 3DHP).
    train: refiner dropout on (needs `rng`).
    denoiser_skeleton: the joint layout the denoiser was trained in, when it is not `skeleton`
      (a D3DP trained on H36M applied to 3DHP): the 2D goes in converted to it and the
      hypotheses come back in `skeleton`. The released script feeds 3DHP-ordered joints to the
      H36M-trained model unconverted.
  """
  lay = denoiser_skeleton or skeleton
  if lay != skeleton:
    kp2d = skel.convert(kp2d, skeleton, lay)
  x0 = d3dp.sample(
    denoiser,
    den_vars,
    kp2d,
    key,
    noise,
    num_hypotheses=num_hypotheses,
    num_steps=num_steps,
    scale=scale,
    flip=flip,
    num_timesteps=num_timesteps,
    skeleton=lay,
  )
  if lay != skeleton:
    x0 = skel.convert(x0, lay, skeleton)
  x0 = x0 * 1000.0
  shape = x0.shape
  rngs = {'dropout': rng} if train else {}
  y = refiner.apply(ref_vars, x0.reshape(-1, *shape[-2:]), train=train, rngs=rngs)
  return d3dp.zero_root(y.reshape(shape), root)


def _wmean(x: jax.Array, weight: jax.Array | None) -> jax.Array:
  """Mean of x (B, ..., T, J); with weight (B, T) a frame-weighted mean (padding/invalid frames 0)."""
  if weight is None:
    return x.mean()
  w = jnp.asarray(weight, x.dtype).reshape(x.shape[0], *(1,) * (x.ndim - 3), x.shape[-2], 1)
  return masked_mean(x, jnp.broadcast_to(w, x.shape))


def mpjpe_valid(pred: jax.Array, gt: jax.Array, valid: jax.Array) -> jax.Array:
  """Per-step MPJPE over valid frames: pred (B, K, H, T, J, 3) with H = 1, gt (B, T, J, 3),
  valid (B, T, 1) -> (K,)."""
  err = safe_norm(pred[:, :, 0] - gt[:, None]).mean(-1)  # (B, K, T)
  w = jnp.asarray(valid, err.dtype).reshape(valid.shape[0], 1, -1)
  return (err * w).sum((0, 2)) / jnp.maximum(w.sum((0, 2)), 1.0)


def pixel_target(kp2d: jax.Array, w, h) -> jax.Array:
  """Normalised 2D -> pixels (the JPMA target); w, h scalars or broadcastable ((B, 1, 1))."""
  return camera.image_coordinates(kp2d[..., :2], w, h)


def reproject(poses_mm, root_mm, cam_px, *, linear: bool = True):
  """(B, K, H, T, J, 3) root-relative mm + root (B, T, 1, 3) -> pixels (B, K, H, T, J, 2)."""
  placed = poses_mm + root_mm[:, None, None]
  proj = camera.project_to_2d_linear if linear else camera.project_to_2d
  return proj(placed, cam_px)


def target_losses(pred, kp2d_px, root_mm, cam_px, *, w2d=0.5, w3d=1.0, linear=True, weight=None):
  """Target-branch losses with JPMA selection.

  Args:
    pred: (B, K, H, T, J, 3) refined root-zeroed hypotheses, mm.
    kp2d_px: (B, T, J, 2) target 2D in pixels.
    root_mm: (B, T, 1, 3) target root trajectory, mm.
    cam_px: (9,) or per-clip (B, 9) pixel intrinsics.
    weight: optional (B, T) frame weights (padding and invalid frames 0); None = plain means
      (the official script, which has no padding).

  Returns:
    dict with loss, loss_2d, loss_3d, index (B, K, T, J), selected (B, K, T, J, 3), reproj.
  """
  reproj = reproject(pred, root_mm, cam_px, linear=linear)
  err = safe_norm(reproj - kp2d_px[:, None, None])  # (B, K, H, T, J)
  index = jnp.argmin(err, axis=2)
  loss_2d = _wmean(jnp.min(err, axis=2), weight)
  sel = jnp.take_along_axis(pred, index[:, :, None, ..., None], axis=2)  # (B, K, 1, T, J, 3)
  loss_3d = _wmean(safe_norm(sel - pred), weight)
  return {
    'loss': w2d * loss_2d + w3d * loss_3d,
    'loss_2d': loss_2d,
    'loss_3d': loss_3d,
    'index': index.astype(jnp.int32),
    'selected': sel[:, :, 0],
    'reproj': reproj,
  }


def source_losses(
  pred, gt_mm, kp2d_px, root_mm, cam_px, *, w2d=0.1, w3d=1.0, linear=True, weight=None
):
  """Source-branch losses: w2d * mean_min_h reprojection error + w3d * MPJPE(GT, every hypothesis).

  Args:
    pred: (B, K, H, T, J, 3) refined root-zeroed hypotheses, mm.
    gt_mm: (B, T, J, 3) source ground truth, root-relative, mm.
    kp2d_px: (B, T, J, 2) the synthesised source 2D (pixels).
    root_mm: (B, T, 1, 3) the synthesised root position.
    cam_px: (9,) or (B, 9) the target camera (pixels).
    weight: optional (B, T) frame weights.
  """
  reproj = reproject(pred, root_mm, cam_px, linear=linear)
  loss_2d = _wmean(safe_norm(reproj - kp2d_px[:, None, None]).min(axis=2), weight)
  loss_3d = _wmean(safe_norm(pred - gt_mm[:, None, None]), weight)
  return {'loss': w2d * loss_2d + w3d * loss_3d, 'loss_2d': loss_2d, 'loss_3d': loss_3d}


def redistribute_source(
  key: jax.Array,
  src_mm: jax.Array,
  tgt_px: jax.Array,
  cam_px: jax.Array,
  *,
  root: int = ROOT_3DHP,
  linear: bool = True,
) -> dict[str, jax.Array]:
  """Target-specific source augmentation ("global position redistribution").

  Each source clip is paired with a random target clip (a permutation, as the official
  `randperm`); per frame, the target 2D pose's scale s = (bbox width + bbox height) / 2 and the
  source pose's extents (dx, dy) give the depth z = (fx dx + fy dy) / (2 s), and the target root
  pixel u gives the root position z (u - c) / f; the source pose is moved there and projected with
  the target camera. Units are consistent here (mm and pixels), unlike the released script.

  Args:
    key: PRNG key for the pairing.
    src_mm: (B, T, J, 3) root-relative source poses, mm.
    tgt_px: (M, T, J, 2) target 2D poses in pixels, M >= B.
    cam_px: (9,) target pixel intrinsics [fx, fy, cx, cy, ...], or (M, 9) one per target clip
      (each source clip then takes its partner's camera).

  Returns:
    {'kp2d_px': (B, T, J, 2) synthesised 2D, 'root_mm': (B, T, 1, 3), 'pose_mm': the placed
     poses, 'pick': (B,) the partner target clips, 'cam_px': (9,) or (B, 9) the cameras used}.
  """
  b = src_mm.shape[0]
  if tgt_px.shape[0] < b:
    raise ValueError(f'source batch {b} needs at least as many target clips, got {tgt_px.shape[0]}')
  pick = jax.random.permutation(key, tgt_px.shape[0])[:b]
  tgt = tgt_px[pick]  # (B, T, J, 2)
  cam_px = jnp.asarray(cam_px)
  if cam_px.ndim == 2:
    cam_px = cam_px[pick]
  k = cam_px.reshape(cam_px.shape[:-1] + (1,) * (cam_px.ndim - 1) + (9,))  # (9,) | (B, 1, 9)
  ext2d = tgt.max(axis=-2) - tgt.min(axis=-2)  # (B, T, 2)
  s = jnp.maximum(ext2d.sum(-1) / 2, 1e-3)  # (B, T)
  ext3d = src_mm.max(axis=-2) - src_mm.min(axis=-2)  # (B, T, 3)
  f, c = k[..., :2], k[..., 2:4]
  z = (f[..., 0] * ext3d[..., 0] + f[..., 1] * ext3d[..., 1]) / (2 * s)  # (B, T)
  xy = z[..., None] * (tgt[..., root, :] - c) / f  # (B, T, 2)
  root_mm = jnp.concatenate([xy, z[..., None]], -1)[:, :, None]  # (B, T, 1, 3)
  placed = src_mm + root_mm
  proj = camera.project_to_2d_linear if linear else camera.project_to_2d
  return {
    'kp2d_px': proj(placed, cam_px),
    'root_mm': root_mm,
    'pose_mm': placed,
    'pick': pick,
    'cam_px': cam_px,
  }


def ema_update(teacher, student, decay: float):
  """teacher <- decay teacher + (1 - decay) student (leaf-wise). RECONSTRUCTED FROM THE PAPER's
  teacher-student paradigm; the released code has no teacher."""
  return jax.tree.map(lambda t, s: decay * t + (1 - decay) * s, teacher, student)


def _target_inputs(target):
  return target['kp2d'], target['kp2d_px'], target['root_mm'], target['cam_px']


def adaptation_loss(
  trainable,
  denoiser,
  den_vars,
  refiner,
  target,
  source,
  key,
  *,
  teacher=None,
  num_hypotheses: int = 3,
  num_steps: int = 1,
  weights=(0.5, 1.0, 0.1, 1.0),
  lora_scale: float = 1.0,
  train: bool = True,
  ref_buffers=None,
  sample_kw: Mapping[str, Any] | None = None,
):
  """One adaptation objective: target branch (JPMA) + source branch (re-distributed source).

  Args:
    trainable: {'lora': adapters, 'refiner': refiner variables}.
    denoiser, den_vars: the frozen denoiser and its base variables.
    refiner: the Refiner module.
    target: {'kp2d' (B, T, J, 2) normalised, 'kp2d_px' (B, T, J, 2), 'root_mm' (B, T, 1, 3),
      'cam_px' (9,) or (B, 9), 'res' (2,) or (B, 2) image [w, h]; optional 'weight' (B, T)}.
    source: {'pose_mm' (B, T, J, 3) root-relative GT in the target's joint layout; optional
      'weight' (B, T)}.
    key: PRNG key (x_T draws, pairing, dropout).
    teacher: optional {'lora', 'refiner'} EMA teacher; when given, the target pseudo-label is the
      teacher's JPMA pose (stop_gradient) instead of the student's own non-detached selection.
    weights: (target 2D, target 3D, source 2D, source 3D).
    ref_buffers: the refiner's non-trainable collections ({'buffers': {'pe'}}), when
      trainable['refiner'] holds only its params.
    sample_kw: more `sample_poses` keywords (skeleton, root, flip, scale, num_timesteps,
      denoiser_skeleton).

  Returns:
    (loss, scalars dict). The two branches are summed into one objective (one optimiser step per
    (target, source) batch pair; the released script steps once per branch).
  """
  k_t, k_s, k_pair, k_d1, k_d2, k_teach = jax.random.split(key, 6)
  sample_kw = dict(sample_kw or {})
  root = sample_kw.get('root', ROOT_3DHP)

  def run(tr, kp2d, k, kd):
    dv = merged_variables(den_vars, tr['lora'], lora_scale)
    rv = {**tr['refiner'], **(ref_buffers or {})}
    return sample_poses(
      denoiser,
      dv,
      refiner,
      rv,
      kp2d,
      key=k,
      num_hypotheses=num_hypotheses,
      num_steps=num_steps,
      train=train,
      rng=kd,
      **sample_kw,
    )

  kp2d, kp2d_px, root_mm, cam = _target_inputs(target)
  wt, ws = target.get('weight'), source.get('weight')
  pred_t = run(trainable, kp2d, k_t, k_d1)
  tl = target_losses(pred_t, kp2d_px, root_mm, cam, w2d=weights[0], w3d=weights[1], weight=wt)
  loss_t, l3d = tl['loss'], tl['loss_3d']
  if teacher is not None:
    pred_teacher = jax.lax.stop_gradient(run(teacher, kp2d, k_teach, k_d1))
    pseudo = target_losses(pred_teacher, kp2d_px, root_mm, cam)['selected'][:, :, None]
    l3d = _wmean(safe_norm(pred_t - pseudo), wt)
    loss_t = weights[0] * tl['loss_2d'] + weights[1] * l3d
  syn = redistribute_source(k_pair, source['pose_mm'], kp2d_px, cam, root=root)
  res = jnp.asarray(target['res'], jnp.float32)
  if res.ndim == 2:
    res = res[syn['pick']][:, None, None]  # (B, 1, 1, 2) against (B, T, J, 2)
  kp2d_src = camera.normalize_screen_coordinates(syn['kp2d_px'], res[..., 0], res[..., 1])
  pred_s = run(trainable, kp2d_src, k_s, k_d2)
  sl = source_losses(
    pred_s,
    source['pose_mm'],
    syn['kp2d_px'],
    syn['root_mm'],
    syn['cam_px'],
    w2d=weights[2],
    w3d=weights[3],
    weight=ws,
  )
  loss = loss_t + sl['loss']
  scalars = {
    'loss': loss,
    'target_2d': tl['loss_2d'],
    'target_3d': l3d,
    'source_2d': sl['loss_2d'],
    'source_3d': sl['loss_3d'],
  }
  return loss, scalars


# ---------------------------------------------------------------------------------------------
# Engine hooks (jaxpose.train.loop): `jaxpose train --config configs/posynda.py` runs the
# adaptation with the default trainer: checkpoints, resume, metrics, evaluation, sweeps.
#
# Variables: {'params': {'lora': adapters, 'refiner': refiner params}, 'denoiser': the frozen
# denoiser's variables, 'teacher': {'lora', 'refiner'} (EMA; only with `teacher`)}. Only
# `params` is trained; the frozen denoiser travels in the model state (and in checkpoints, so an
# adapted workdir evaluates on its own). Batches: {'target': a target-domain batch, 'source': a
# source-domain batch} from `train_iterator`.
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Networks:
  """The two modules of PoSynDA (hashable: the sampler takes the denoiser as a static argument).

  pe_len: rows of the refiner's sinusoidal table (a constant, rebuilt on use, never saved).
  """

  denoiser: Any
  refiner: Refiner
  pe_len: int


def settings(config) -> dict[str, Any]:
  """`config.method.kwargs` over DEFAULTS; unknown keys raise with the valid ones."""
  return _kwargs.settings(config, DEFAULTS, 'posynda')


def make_model(config) -> Networks:
  """The denoiser (the configured `model`, a D3DP around any lifter) and the refiner."""
  d = settings(config)
  den = d3dp._hashable(models.build_from_config(config))
  official = bool(d['official_batch_position_encoding'])
  if official:  # pe[n] for pose n of the flattened (b, k, h, t) batch
    b = max(int(config.data.batch_size), int(config.data.eval_batch_size))
    h = max(
      int(d['num_hypotheses']) * int(d['num_steps']),
      int(d['eval_hypotheses']) * int(d['eval_steps']),
    )
    pe_len = b * h * int(config.data.frames)
  else:  # pe[j] for joint j
    pe_len = int(config.data.num_joints)
  ref = Refiner(
    dim=int(d['refiner_dim']),
    num_heads=int(d['refiner_heads']),
    hidden=int(d['refiner_hidden']),
    depth=int(d['refiner_depth']),
    dropout=float(d['refiner_dropout']),
    max_len=pe_len,
    official_batch_position_encoding=official,
  )
  return Networks(den, ref, pe_len)


def _buffers(model: Networks) -> dict[str, Any]:
  return {
    'buffers': {
      'pe': jnp.asarray(sinusoid_table(model.pe_len, model.refiner.dim, compute_dtype=np.float64))
    }
  }


def init_variables(config, model: Networks, loaded: dict[str, Any] | None = None) -> dict[str, Any]:
  """Frozen denoiser (`loaded`: the `init_from` variables the trainer read, an official D3DP
  checkpoint with format 'torch' or a jaxpose D3DP workdir with 'orbax'; a fresh initialisation
  when None, for smoke runs), LoRA
  adapters (B = 0, so adaptation starts from the denoiser's own output), a fresh refiner and, with
  `teacher`, an EMA teacher equal to the student."""
  d = settings(config)
  k_den, k_lora, k_ref = jax.random.split(jax.random.PRNGKey(int(config.seed)), 3)
  x = jnp.zeros((1, config.data.frames, config.data.num_joints, model.denoiser.in_channels))
  if loaded is not None:
    den_vars = {
      'params': loaded['params'],
      **{k: v for k, v in loaded.items() if k not in ('params', 'denoiser', 'teacher')},
    }
  else:
    warnings.warn(
      'posynda: config.init_from.path is empty, so the frozen denoiser is randomly initialised '
      '(fine for smoke tests; the recipe starts from a D3DP trained on the source domain)',
      stacklevel=2,
    )
    den_vars = model.denoiser.init(k_den, x, train=False, t=jnp.zeros((1,), jnp.int32))
  den_vars = jax.tree.map(jnp.asarray, dict(den_vars))
  adapters = lora.init_adapters(den_vars['params'], k_lora, int(d['lora_rank']))
  ref = model.refiner.init(k_ref, jnp.zeros((1, config.data.num_joints, 3)), train=False)
  params = {'lora': adapters, 'refiner': ref['params']}
  out = {'params': params, 'denoiser': den_vars}
  if d['teacher']:
    out['teacher'] = jax.tree.map(jnp.copy, params)
  return out


def _skeletons(config, d) -> dict[str, Any]:
  sk = config.data.skeleton
  return {
    'skeleton': sk,
    'root': skel.get(sk).root,
    'denoiser_skeleton': d['denoiser_skeleton'] or None,
    'scale': float(d['scale']),
    'num_timesteps': int(d['num_timesteps']),
  }


def _target_of(batch) -> dict[str, jax.Array]:
  """Engine batch (metres, normalised 2D, pixel intrinsics) -> the target dict (mm, pixels)."""
  w = batch['res_w'].astype(jnp.float32)
  h = batch['res_h'].astype(jnp.float32)
  kp2d = batch['kp2d_norm'][..., :2]
  return {
    'kp2d': kp2d,
    'kp2d_px': pixel_target(kp2d, w[:, None, None], h[:, None, None]),
    'root_mm': batch['pose3d_root'] * 1000.0,
    'cam_px': batch['cam_intrinsics'],
    'res': jnp.stack([w, h], -1),
    'weight': batch['valid'],
  }


def loss_fn(model: Networks, params, model_state, batch, rng, config):
  """Engine objective on {'target': batch, 'source': batch}: `adaptation_loss` (student), then the
  EMA teacher update when enabled. Returns (loss, (scalars, new model_state))."""
  d = settings(config)
  src_sk = str(d['source']['skeleton']) if d['source'] else config.data.skeleton
  src = batch['source']['pose3d_cam'] * 1000.0
  if src_sk != config.data.skeleton:
    src = skel.convert(src, src_sk, config.data.skeleton)
  teacher = model_state.get('teacher')
  wrap = lambda t: {'lora': t['lora'], 'refiner': {'params': t['refiner']}}
  loss, scalars = adaptation_loss(
    wrap(params),
    model.denoiser,
    model_state['denoiser'],
    model.refiner,
    _target_of(batch['target']),
    {'pose_mm': src, 'weight': batch['source']['valid']},
    rng,
    teacher=None if teacher is None else wrap(teacher),
    num_hypotheses=int(d['num_hypotheses']),
    num_steps=int(d['num_steps']),
    weights=(
      float(d['w_target_2d']),
      float(d['w_target_3d']),
      float(d['w_source_2d']),
      float(d['w_source_3d']),
    ),
    lora_scale=float(d['lora_scale']),
    train=True,
    ref_buffers=_buffers(model),
    sample_kw={**_skeletons(config, d), 'flip': True},
  )
  new_state = dict(model_state)
  if teacher is not None:
    new_state['teacher'] = ema_update(teacher, jax.lax.stop_gradient(params), float(d['ema_decay']))
  return loss, (scalars, new_state)


def predict(model: Networks, variables, kp2d_norm, config):
  """kp2d_norm (B, T, J, C2) -> (B, T, J, 3) metres, root joint 0: the mean of `eval_hypotheses`
  refined hypotheses after `eval_steps` DDIM steps (official evaluation: H = K = 1)."""
  d = settings(config)
  p = variables['params']
  dv = merged_variables(variables['denoiser'], p['lora'], float(d['lora_scale']))
  rv = {'params': p['refiner'], **_buffers(model)}
  y = sample_poses(
    model.denoiser,
    dv,
    model.refiner,
    rv,
    kp2d_norm[..., :2],
    key=jax.random.key(int(d['seed'])),
    num_hypotheses=int(d['eval_hypotheses']),
    num_steps=int(d['eval_steps']),
    flip=bool(config.eval.flip_test),
    **_skeletons(config, d),
  )
  return y[:, -1].mean(axis=1) / 1000.0


def source_data(config):
  """The source-domain data block: `method.kwargs.source`, with the target's window length and
  batch size (one source batch per target batch)."""
  return paired.source_block('posynda', settings(config)['source'], config.data)


# Target windows (config.data, its train_split) paired with cycled source windows:
# {'target': batch, 'source': batch} (`jaxpose.data.paired`).
train_iterator = paired.method_train_iterator(source_data)


METHOD = Method(
  loss_fn=loss_fn,
  predict=predict,
  make_model=make_model,
  init_variables=init_variables,
  train_iterator=train_iterator,
)
