"""PoseDA's Global Position Alignment (GPA) and the screen-normalisation conversions it needs.

Paper: Chai et al., "Global Adaptation meets Local Generalization: Unsupervised Domain Adaptation
for 3D Human Pose Estimation", ICCV 2023, arXiv:2303.16456. Official release:
github.com/rese1f/PoseDA at 7934411098ce74e88e6d97f29dc1b06e68c6bd65 (the `gpa` function in
README.md is the only released code); research/poseda.md §2.1 and §8. Written from the released
function's semantics; no code copied.

Two parts:
1. GPA (`gpa`, `gpa_root`, the normalisation helpers): EXACT to the released function (parity:
   tests/parity, `poseda__gpa.npz`).
2. The adaptation (`METHOD`: `loss_fn`, `predict`, `make_model`, `init_variables`,
   `train_iterator`), RECONSTRUCTED from the paper's abstract and PoseAug (LPA's networks are
   `jaxpose.models._poseda`): any registry lifter is trained in the default trainer on
   {'target': target batch, 'source': source batch} pairs (`jaxpose.data.paired`) with source 3D
   labels and target 2D poses + intrinsics only (the target's 3D is never read):
   - GPA (`place_on_target`): each source window is paired with a random target window; frame t
     of the source pose goes to GPA's root for frame t of the partner (depth from the partner's
     2D box, root on its ray) and is projected (pinhole) with the partner's camera -> 2D input;
   - LPA: the generator's BA/BL/RT parameters (from the window's centre pose + noise, applied to
     every frame) augment the source window; the augmented window is GPA-placed and projected
     too; the lifter's loss is `config.method.loss` (MPJPE) on both sets of pairs;
   - adversarial schedule (inside each train step; LPA's networks and their Adam states live in
     model_state['lpa'], updated with stop-gradient w.r.t. the lifter): the generator every step
     on LSGAN(D3(aug 3D), 1) w_adv_3d + LSGAN(D2(aug 2D), 1) w_adv_2d + range hinges (bone
     direction change, bone-length ratio); the discriminators every `d_every` steps with the
     source 3D poses (D3) and the target 2D poses (D2) as the real anchors. The augmented pairs
     enter the lifter's loss after `lpa_warmup` steps.
   Deviations / choices of the reconstruction: the depth of each pair uses its partner's own
   focal length (released: row 0's for the batch; identical with one camera per batch); windows
   are paired, frames follow their partner's frames; no PoseAug feedback (hardness) loss; no
   translation augmentation (GPA positions); one optimiser step for the lifter per batch pair
   with the source pairs always in the batch (the mix is `w_source` / `w_aug`); without GPA, LPA
   projects with the source camera at the source root; 2D projections ignore lens distortion.

GPA moves each source 3D pose (metres, camera frame) to where a randomly paired target 2D pose
sits, at the depth that makes its projected size match:
  p = target_2d[perm]                       perm: a random permutation (jax PRNG key or given)
  s = (w_2d + h_2d) / 2                     extents of p over all joints
  z = (fx dx + fy dy) / (2 s)               dx, dy: x / y extents of the source pose; fx, fy of
                                            camera_params ROW 0 for every sample (as released)
  (u, v) = (p_root - c_i) / f_i             per-sample c, f of camera_params[i] (NOT permuted)
  out = source - source_root + (z u, z v, z)
Camera parameters are ordered [fx, fy, cx, cy] (what the code reads: [..., :2] is f, [..., 2:4]
is c); the README's docstring says "cx, cy, fx, fy", which is wrong (the parity fixture's
`output/docstring_order` is what that order gives: depths ~ 0.01 m).

Screen normalisation. PoseDA normalises x by the width and y by the height:
  x_n = 2 x / W - 1, y_n = 2 y / H - 1, (fx, cx) -> (2 fx / W, 2 cx / W - 1),
  (fy, cy) -> (2 fy / H, 2 cy / H - 1);
jaxpose (VideoPose3D, `geometry.camera.normalize_screen_coordinates`) normalises both by the width:
  y_j = 2 y / W - H / W. So x is the same and y_j = y_n * H / W (also fy, cy), see
  `jaxpose_to_poseda` / `poseda_to_jaxpose`. GPA's rays (u, v) do not depend on the convention,
  but its depth does (s mixes x and y extents), so convert before calling `gpa` to reproduce the
  official numbers on non-square images (3DHP TS5-6 are 1920 x 1080).

Deviation (opt-in): `min_box` clamps s from below (the released code divides by s and gives
inf/NaN for collapsed target poses); the default 0 is the released behaviour.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

from jaxpose import losses as losses_lib
from jaxpose import models
from jaxpose.data import paired
from jaxpose.geometry import camera
from jaxpose.geometry import skeleton as skel
from jaxpose.geometry._array import namespace
from jaxpose.methods import _kwargs, supervised
from jaxpose.methods.base import Method
from jaxpose.models import _poseda as lpa_nets


def gpa_root(
  source_3d: ArrayLike,
  target_2d: ArrayLike,
  camera_params: ArrayLike,
  *,
  key: jax.Array | None = None,
  perm: ArrayLike | None = None,
  min_box: float = 0.0,
  per_sample_focal: bool = False,
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """The GPA root position of each source pose.

  Args:
    source_3d: (N, J, 3) metres, camera frame (joint 0 = root).
    target_2d: (N, J, 2) PoseDA-normalised screen coordinates.
    camera_params: (N, 4) [fx, fy, cx, cy], PoseDA-normalised.
    key: PRNG key for the pairing permutation (ignored when `perm` is given).
    perm: (N,) int permutation to replay (e.g. the fixture's recorded torch.randperm).
    min_box: lower bound on the 2D box size s (0: released behaviour).
    per_sample_focal: depth from each sample's own focal length (deviation, for batches that mix
      cameras); False: row 0's for every sample (released behaviour).

  Returns:
    root (N, 3) metres, z (N,) metres, uv (N, 2) normalised rays of the paired target roots.
  """
  src = jnp.asarray(source_3d)
  tgt = jnp.asarray(target_2d)
  cam = jnp.asarray(camera_params, src.dtype)
  n = src.shape[0]
  if tgt.shape[:2] != src.shape[:2]:
    raise ValueError(f'gpa: source_3d {src.shape} and target_2d {tgt.shape} differ in (N, J)')
  if cam.shape != (n, 4):
    raise ValueError(f'gpa: camera_params must be (N, 4) [fx, fy, cx, cy], got {cam.shape}')
  if perm is None:
    if key is None:
      raise ValueError('gpa: pass a PRNG key or an explicit perm')
    perm = jax.random.permutation(key, n)
  p = tgt[jnp.asarray(perm)]
  ext2 = p.max(axis=1) - p.min(axis=1)  # (N, 2)
  s = (ext2[:, 0] + ext2[:, 1]) / 2
  if min_box:
    s = jnp.maximum(s, min_box)
  ext3 = src.max(axis=1) - src.min(axis=1)  # (N, 3)
  fx, fy = (cam[:, 0], cam[:, 1]) if per_sample_focal else (cam[0, 0], cam[0, 1])
  z = (fx * ext3[:, 0] + fy * ext3[:, 1]) / (2 * s)
  uv = (p[:, 0] - cam[:, 2:4]) / cam[:, :2]
  return jnp.concatenate([z[:, None] * uv, z[:, None]], axis=-1), z, uv


def gpa(
  source_3d: ArrayLike,
  target_2d: ArrayLike,
  camera_params: ArrayLike,
  *,
  key: jax.Array | None = None,
  perm: ArrayLike | None = None,
  min_box: float = 0.0,
) -> jax.Array:
  """Global Position Alignment, exactly as released (module docstring).

  Args: as `gpa_root`.

  Returns:
    (N, J, 3) metres: each source pose, its shape kept, moved to its GPA root position.
  """
  src = jnp.asarray(source_3d)
  root, _, _ = gpa_root(src, target_2d, camera_params, key=key, perm=perm, min_box=min_box)
  return src - src[:, :1] + root[:, None]


def project(pose3d: ArrayLike, camera_params: ArrayLike) -> jax.Array:
  """Pinhole projection in a normalised screen: f * X / Z + c.

  pose3d: (N, J, 3) metres; camera_params: (N, 4) or (4,) [fx, fy, cx, cy] in the same
  normalisation as the returned (N, J, 2) points (PoseDA's or jaxpose's).
  """
  x = jnp.asarray(pose3d)
  cam = jnp.asarray(camera_params, x.dtype)
  cam = cam[..., None, :] if cam.ndim == 2 else cam
  return x[..., :2] / x[..., 2:] * cam[..., :2] + cam[..., 2:4]


def poseda_normalize(x_px: ArrayLike, w: ArrayLike, h: ArrayLike) -> ArrayLike:
  """Pixels -> PoseDA screen coordinates (2x/W - 1, 2y/H - 1). x_px (..., 2); w, h scalars."""
  xp = namespace(x_px)
  wh = xp.stack([xp.asarray(w, dtype=float), xp.asarray(h, dtype=float)], -1)
  return xp.asarray(x_px) * 2 / wh - 1


def poseda_camera(K: ArrayLike, w: ArrayLike, h: ArrayLike) -> ArrayLike:
  """Pixel intrinsics (..., 3, 3) -> PoseDA camera_params (..., 4) [fx, fy, cx, cy] normalised."""
  xp = namespace(K)
  K = xp.asarray(K)
  wh = xp.stack([xp.asarray(w, dtype=K.dtype), xp.asarray(h, dtype=K.dtype)], -1)
  f = xp.stack([K[..., 0, 0], K[..., 1, 1]], -1) * 2 / wh
  c = xp.stack([K[..., 0, 2], K[..., 1, 2]], -1) * 2 / wh - 1
  return xp.concatenate([f, c], -1)


def _scale_y(x: ArrayLike, factor: ArrayLike, camera: bool) -> ArrayLike:
  xp = namespace(x)
  x = xp.asarray(x)
  scale = xp.ones(4 if camera else 2, dtype=x.dtype)
  idx = [1, 3] if camera else [1]
  if xp is jnp:
    scale = scale.at[jnp.asarray(idx)].set(factor)
  else:
    scale[idx] = factor
  return x * scale


def jaxpose_to_poseda(x: ArrayLike, w: float, h: float, *, camera: bool = False) -> ArrayLike:
  """jaxpose (width-normalised) -> PoseDA (width/height-normalised) screen coordinates.

  Args:
    x: (..., 2) points, or (..., 4) [fx, fy, cx, cy] when camera=True (jaxpose's
      `intrinsics_px_to_norm(...)[..., :4]`).
    w, h: image width and height, pixels.

  Returns:
    Same shape: y (and fy, cy) multiplied by W / H; x, fx, cx unchanged.
  """
  return _scale_y(x, w / h, camera)


def poseda_to_jaxpose(x: ArrayLike, w: float, h: float, *, camera: bool = False) -> ArrayLike:
  """Inverse of `jaxpose_to_poseda`: y (and fy, cy) multiplied by H / W."""
  return _scale_y(x, h / w, camera)


def gpa_jaxpose(
  source_3d: ArrayLike,
  target_2d: ArrayLike,
  camera_params: ArrayLike,
  w: float,
  h: float,
  *,
  key: jax.Array | None = None,
  perm: ArrayLike | None = None,
  min_box: float = 0.0,
) -> jax.Array:
  """GPA on jaxpose-normalised inputs, converted to PoseDA's convention first (same numbers as
  the released code on the same pixels). target_2d (N, J, 2), camera_params (N, 4) [fx, fy, cx,
  cy] jaxpose-normalised; w, h the target image size in pixels. Returns (N, J, 3) metres."""
  return gpa(
    source_3d,
    jaxpose_to_poseda(target_2d, w, h),
    jaxpose_to_poseda(camera_params, w, h, camera=True),
    key=key,
    perm=perm,
    min_box=min_box,
  )


# ---------------------------------------------------------------------------------------------
# The adaptation (RECONSTRUCTED: only GPA is released). Source 3D poses (with their labels) and
# target 2D poses (no target 3D) train any registry lifter: each source window is paired with a
# random target window, moved by GPA to where that target pose sits in the image and at what depth,
# and projected with the target camera; LPA's generator adds locally augmented copies, checked by
# the anchor discriminators (source 3D poses and target 2D poses as anchors).
# ---------------------------------------------------------------------------------------------

# method.kwargs keys and their defaults.
DEFAULTS = {
  'gpa': True,  # place the source poses with GPA into the target's cameras
  'lpa': True,  # local pose augmentation (generator + anchor discriminators)
  'source': None,  # the source-domain data block (configs/common.py dataset(...))
  'gpa_normalisation': 'poseda',  # 'poseda' (x / W, y / H: as released) or 'jaxpose' (both / W)
  'min_box': 1e-3,  # lower bound on the target 2D box size s (normalised units)
  'w_source': 1.0,  # weight of the GPA-placed (or plain, without GPA) source pairs
  'w_aug': 1.0,  # weight of the LPA-augmented pairs
  'lpa_warmup': 0,  # steps before the augmented pairs enter the lifter's loss
  'noise_dim': 48,
  'g_hidden': 256,
  'g_depth': 3,
  'bl_max': 0.2,
  'rt_max': float(np.pi),
  'ba_scale': 1.0,
  'd_hidden': 256,
  'd2_hidden': 100,
  'd2_depth': 5,
  'lr_g': 1e-4,
  'lr_d': 1e-4,
  'd_every': 2,  # discriminator update every n steps (PoseAug: 2)
  'lpa_grad_clip': 1.0,
  'w_adv_3d': 6.0,  # PoseAug's 3D / 2D adversarial weights
  'w_adv_2d': 1.0,
  'ba_range': 0.205,  # hinge on 1 - cos(bone direction change) (PoseAug's ba_range_m)
  'bl_range': 0.1,  # hinge on |bone length ratio - 1| (PoseAug's blr_limit)
  'w_range': 1.0,
}


def settings(config) -> dict[str, Any]:
  """`config.method.kwargs` over DEFAULTS; unknown keys raise with the valid ones."""
  d = _kwargs.settings(config, DEFAULTS, 'poseda')
  if d['gpa_normalisation'] not in ('poseda', 'jaxpose'):
    raise ValueError(
      f"poseda: method.kwargs.gpa_normalisation must be 'poseda' or 'jaxpose', "
      f'got {d["gpa_normalisation"]!r}'
    )
  return d


def target_cameras(
  cam_px: jax.Array, w: jax.Array, h: jax.Array, normalisation: str = 'poseda'
) -> jax.Array:
  """Pixel intrinsics (B, 9) [fx, fy, cx, cy, ...] and image sizes (B,) -> (B, 4) [fx, fy, cx, cy]
  in the screen normalisation GPA runs in ('poseda': x / W, y / H; 'jaxpose': both / W)."""
  f, c = cam_px[:, :2], cam_px[:, 2:4]
  wh = jnp.stack([w, h], -1)
  if normalisation == 'poseda':
    return jnp.concatenate([f * 2 / wh, c * 2 / wh - 1], -1)
  return jnp.concatenate([f * 2 / w[:, None], (c * 2 - wh) / w[:, None]], -1)


def place_on_target(
  key: jax.Array,
  pose3d: jax.Array,
  target: Mapping[str, jax.Array],
  *,
  normalisation: str = 'poseda',
  min_box: float = 1e-3,
) -> dict[str, jax.Array]:
  """GPA for lifter windows: each source window goes to a random target window's positions.

  Windows are paired (a permutation of the target batch, as the released `randperm` pairs poses);
  frame t of the source window takes frame t of its partner: GPA's depth from the partner's 2D box
  and the source pose's extents, the root on the partner root's ray, then a pinhole projection
  with the partner's camera. The partner's own focal length sets the depth (the released code
  takes row 0's: one camera per batch; identical when the batch has one camera).

  Args:
    key: PRNG key of the pairing.
    pose3d: (B, T, J, 3) root-relative source poses, metres, in the target's joint layout.
    target: a target batch: kp2d_norm (Bt, T, J, C) jaxpose-normalised, cam_intrinsics (Bt, 9)
      pixels, res_w, res_h (Bt,) pixels; Bt >= B.
    normalisation: the screen normalisation GPA runs in (module docstring).
    min_box: lower bound on s, in that normalisation.

  Returns:
    {'kp2d_norm': (B, T, J, 2) jaxpose-normalised projections, 'placed': (B, T, J, 3) metres,
     'pick': (B,) the partner target windows}.
  """
  b, t, j, _ = pose3d.shape
  bt = target['kp2d_norm'].shape[0]
  if bt < b:
    raise ValueError(f'poseda: source batch {b} needs at least as many target windows, got {bt}')
  pick = jax.random.permutation(key, bt)[:b]
  w = target['res_w'][pick].astype(jnp.float32)
  h = target['res_h'][pick].astype(jnp.float32)
  cam_px = target['cam_intrinsics'][pick].astype(jnp.float32)
  kp = target['kp2d_norm'][pick][..., :2]
  px = camera.image_coordinates(kp, w[:, None, None], h[:, None, None])
  if normalisation == 'poseda':
    tgt = poseda_normalize(px, w[:, None, None], h[:, None, None])
  else:
    tgt = kp
  cam = target_cameras(cam_px, w, h, normalisation)
  flat = lambda x: x.reshape((b * t,) + x.shape[2:])  # noqa: E731
  root, _, _ = gpa_root(
    flat(pose3d),
    flat(tgt),
    jnp.repeat(cam, t, axis=0),
    perm=jnp.arange(b * t),
    min_box=min_box,
    per_sample_focal=True,
  )
  placed = pose3d + root.reshape(b, t, 1, 3)
  proj_px = (
    placed[..., :2] / placed[..., 2:] * cam_px[:, None, None, :2] + cam_px[:, None, None, 2:4]
  )
  kp2d = camera.normalize_screen_coordinates(proj_px, w[:, None, None], h[:, None, None])
  return {'kp2d_norm': kp2d, 'placed': placed, 'pick': pick}


def place_on_source(pose3d: jax.Array, source: Mapping[str, jax.Array]) -> jax.Array:
  """Without GPA: (B, T, J, 3) root-relative poses put back at the source roots and projected with
  the source cameras (pinhole) -> (B, T, J, 2) jaxpose-normalised. A window whose roots are
  given for one frame only (centre mode) keeps that root for every frame."""
  root = source['pose3d_root']  # (B, T_out, 1, 3)
  if root.shape[1] != pose3d.shape[1]:
    root = jnp.broadcast_to(
      root[:, root.shape[1] // 2 : root.shape[1] // 2 + 1], root.shape[:1] + (pose3d.shape[1], 1, 3)
    )
  placed = pose3d + root
  k = source['cam_intrinsics'][:, None, None].astype(jnp.float32)
  px = placed[..., :2] / placed[..., 2:] * k[..., :2] + k[..., 2:4]
  w = source['res_w'].astype(jnp.float32)[:, None, None]
  h = source['res_h'].astype(jnp.float32)[:, None, None]
  return camera.normalize_screen_coordinates(px, w, h)


def lsgan(score: jax.Array, label: float) -> jax.Array:
  """Least-squares GAN loss: mean (score - label)^2 (PoseAug's criterion)."""
  return jnp.mean((score - label) ** 2)


def range_losses(g: Mapping[str, jax.Array], ba_diff: jax.Array, ba_range: float, bl_range: float):
  """Hinges that keep the augmentations local: bone direction change (1 - cos) above ba_range and
  bone-length ratio deviation above bl_range. Returns (ba loss, bl loss), () each."""
  l_ba = jnp.mean(jax.nn.relu(ba_diff - ba_range))
  l_bl = jnp.mean(jax.nn.relu(jnp.abs(g['bl_group']) - bl_range))
  return l_ba, l_bl


@dataclasses.dataclass(frozen=True)
class Networks:
  """The lifter being adapted (any registry lifter) and LPA's three networks."""

  lifter: Any
  generator: Any
  disc3d: Any
  disc2d: Any


def make_model(config) -> Networks:
  """The configured registry lifter plus LPA's generator and anchor discriminators."""
  d = settings(config)
  sk = config.data.skeleton
  return Networks(
    lifter=models.build_from_config(config),
    generator=lpa_nets.Generator(
      skeleton=sk,
      hidden=int(d['g_hidden']),
      depth=int(d['g_depth']),
      noise_dim=int(d['noise_dim']),
      bl_max=float(d['bl_max']),
      rt_max=float(d['rt_max']),
      ba_scale=float(d['ba_scale']),
    ),
    disc3d=lpa_nets.Discriminator3D(skeleton=sk, hidden=int(d['d_hidden'])),
    disc2d=lpa_nets.Discriminator2D(
      skeleton=sk, hidden=int(d['d2_hidden']), depth=int(d['d2_depth'])
    ),
  )


def _lpa_tx(d, lr: float) -> optax.GradientTransformation:
  clip = float(d['lpa_grad_clip'])
  adam = optax.adam(lr)
  return optax.chain(optax.clip_by_global_norm(clip), adam) if clip else adam


def init_variables(config, model: Networks, loaded: dict[str, Any] | None = None) -> dict[str, Any]:
  """{'params': the lifter's params, its other collections (batch_stats ...), 'lpa': {'gen',
  'disc3d', 'disc2d' params, 'opt_g', 'opt_d' Adam states, 'step'}} (no 'lpa' without LPA).
  `loaded` (config.init_from, e.g. a lifter trained on the source) initialises the lifter."""
  d = settings(config)
  k_l, k_g, k_d3, k_d2 = jax.random.split(jax.random.PRNGKey(int(config.seed)), 4)
  j = int(config.data.num_joints)
  c_in = 3 if config.data.use_conf else 2
  if loaded is not None:
    lifter = {k: v for k, v in loaded.items() if k != 'lpa'}
  else:
    lifter = model.lifter.init(
      {'params': k_l, 'dropout': k_l}, jnp.zeros((1, config.data.frames, j, c_in)), train=False
    )
  out = jax.tree.map(jnp.asarray, dict(lifter))
  if d['lpa']:
    x3 = jnp.zeros((1, j, 3))
    gen = model.generator.init(k_g, x3, jnp.zeros((1, int(d['noise_dim']))))['params']
    d3 = model.disc3d.init(k_d3, x3)['params']
    d2 = model.disc2d.init(k_d2, jnp.zeros((1, j, 2)))['params']
    out['lpa'] = {
      'gen': gen,
      'disc3d': d3,
      'disc2d': d2,
      'opt_g': _lpa_tx(d, float(d['lr_g'])).init(gen),
      'opt_d': _lpa_tx(d, float(d['lr_d'])).init({'disc3d': d3, 'disc2d': d2}),
      'step': jnp.zeros((), jnp.int32),
    }
  return out


def _source_windows(config, d, source):
  """Source 3D windows (B, T, J, 3) and targets (B, T_out, J, 3), in the target's joint layout,
  root-relative at the target's root."""
  x = source.get('pose3d_cam_window', source['pose3d_cam'])
  gt = source['pose3d_cam']
  if x.shape[1] != config.data.frames:
    raise ValueError(
      f'poseda: the source 3D window has {x.shape[1]} frames, data.frames is '
      f'{config.data.frames}; centre-mode lifters need the source block with window_targets=True'
    )
  src_sk = str(d['source']['skeleton']) if d['source'] else config.data.skeleton
  if src_sk != config.data.skeleton:
    x = skel.convert(x, src_sk, config.data.skeleton)
    gt = skel.convert(gt, src_sk, config.data.skeleton)
  r = skel.get(config.data.skeleton).root
  return x - x[..., r : r + 1, :], gt - gt[..., r : r + 1, :]


def _out_frames(x: jax.Array, t_out: int) -> jax.Array:
  """(B, T, ...) -> the output frames (B, T_out, ...): all, or the centre one."""
  if t_out == x.shape[1]:
    return x
  c = x.shape[1] // 2
  return x[:, c : c + 1]


def _inputs(kp2d: jax.Array, use_conf: bool) -> jax.Array:
  return jnp.concatenate([kp2d, jnp.ones_like(kp2d[..., :1])], -1) if use_conf else kp2d


def loss_fn(model: Networks, params, model_state, batch, rng, config):
  """The adaptation objective on {'target': target batch (2D only is read), 'source': source batch}.

  Lifter loss: `config.method.loss` terms (MPJPE by default) on the source pairs (GPA-placed into
  the target cameras, or as they are without GPA) weighted w_source, plus, with LPA after
  `lpa_warmup` steps, on the augmented pairs (GPA-placed) weighted w_aug. LPA's networks are
  updated inside the step (their parameters and Adam states live in model_state['lpa']; no
  gradient reaches them from the lifter's loss): the generator every step on the LSGAN loss
  against both anchor discriminators plus the range hinges, the discriminators every `d_every`
  steps (real: source 3D / target 2D; fake: augmented 3D / its GPA-placed projection).

  Returns:
    (loss, (scalars, new model_state)).
  """
  d = settings(config)
  src, tgt = batch['source'], batch['target']
  x3d, gt = _source_windows(config, d, src)
  b, t = x3d.shape[:2]
  t_out = gt.shape[1]
  k_pair, k_pair_aug, k_noise, k_drop = jax.random.split(rng, 4)
  place = lambda k, x: place_on_target(  # noqa: E731
    k, x, tgt, normalisation=d['gpa_normalisation'], min_box=float(d['min_box'])
  )
  if d['gpa']:
    kp_src = place(k_pair, x3d)['kp2d_norm']
  else:
    kp_src = src['kp2d_norm'][..., :2]
    src_sk = str(d['source']['skeleton']) if d['source'] else config.data.skeleton
    if src_sk != config.data.skeleton:
      kp_src = skel.convert(kp_src, src_sk, config.data.skeleton)
  weight = src['valid'].astype(jnp.float32).reshape(b, -1)[:, :t_out]
  inputs, targets, weights = [kp_src], [gt], [float(d['w_source']) * weight]
  scalars: dict[str, jax.Array] = {}
  new_state = dict(model_state)
  if d['lpa']:
    st = model_state['lpa']
    sk = config.data.skeleton
    noise = jax.random.normal(k_noise, (b, int(d['noise_dim'])))
    centre = x3d[:, t // 2]
    real2d = tgt['kp2d_norm'][:, t // 2, :, :2]

    def generate(gen_params):
      g = model.generator.apply({'params': gen_params}, centre, noise)
      aug, ba_diff = lpa_nets.augment(x3d, g['ba'], g['bl'], g['rt'], sk)
      kp = place(k_pair_aug, aug)['kp2d_norm'] if d['gpa'] else place_on_source(aug, src)
      return g, aug, ba_diff, kp

    def g_loss(gen_params):
      g, aug, ba_diff, kp = generate(gen_params)
      s3 = model.disc3d.apply({'params': st['disc3d']}, aug[:, t // 2])
      s2 = model.disc2d.apply({'params': st['disc2d']}, kp[:, t // 2])
      adv = float(d['w_adv_3d']) * lsgan(s3, 1.0) + float(d['w_adv_2d']) * lsgan(s2, 1.0)
      l_ba, l_bl = range_losses(g, ba_diff, float(d['ba_range']), float(d['bl_range']))
      return adv + float(d['w_range']) * (l_ba + l_bl), (aug, kp, adv, l_ba, l_bl)

    (lg, (aug, kp_aug, adv, l_ba, l_bl)), g_grads = jax.value_and_grad(g_loss, has_aux=True)(
      st['gen']
    )
    aug, kp_aug = jax.lax.stop_gradient(aug), jax.lax.stop_gradient(kp_aug)

    def d_loss(dp):
      r3 = model.disc3d.apply({'params': dp['disc3d']}, centre)
      f3 = model.disc3d.apply({'params': dp['disc3d']}, aug[:, t // 2])
      r2 = model.disc2d.apply({'params': dp['disc2d']}, real2d)
      f2 = model.disc2d.apply({'params': dp['disc2d']}, kp_aug[:, t // 2])
      l3 = lsgan(r3, 1.0) + lsgan(f3, 0.0)
      l2 = lsgan(r2, 1.0) + lsgan(f2, 0.0)
      return float(d['w_adv_3d']) * l3 + float(d['w_adv_2d']) * l2, (l3, l2)

    dp = {'disc3d': st['disc3d'], 'disc2d': st['disc2d']}
    (ld, (l3, l2)), d_grads = jax.value_and_grad(d_loss, has_aux=True)(dp)
    tx_g, tx_d = _lpa_tx(d, float(d['lr_g'])), _lpa_tx(d, float(d['lr_d']))
    up_g, opt_g = tx_g.update(g_grads, st['opt_g'], st['gen'])
    up_d, opt_d = tx_d.update(d_grads, st['opt_d'], dp)
    do_d = (st['step'] % int(d['d_every'])) == 0
    dp_new = jax.tree.map(lambda p, u: p + jnp.where(do_d, u, 0.0), dp, up_d)
    opt_d = jax.tree.map(lambda new, old: jnp.where(do_d, new, old), opt_d, st['opt_d'])
    new_state['lpa'] = jax.lax.stop_gradient(
      {
        'gen': optax.apply_updates(st['gen'], up_g),
        'disc3d': dp_new['disc3d'],
        'disc2d': dp_new['disc2d'],
        'opt_g': opt_g,
        'opt_d': opt_d,
        'step': st['step'] + 1,
      }
    )
    on = (st['step'] >= int(d['lpa_warmup'])).astype(jnp.float32)
    inputs.append(kp_aug)
    targets.append(_out_frames(aug, t_out))
    weights.append(float(d['w_aug']) * on * weight)
    scalars.update(
      {
        'lpa/g_loss': lg,
        'lpa/g_adv': adv,
        'lpa/d_loss': ld,
        'lpa/d_3d': l3,
        'lpa/d_2d': l2,
        'lpa/range_ba': l_ba,
        'lpa/range_bl': l_bl,
      }
    )
  x = _inputs(jnp.concatenate(inputs, 0), bool(config.data.use_conf))
  lifter_state = {k: v for k, v in model_state.items() if k != 'lpa'}
  variables = {'params': params, **lifter_state}
  drop, path = jax.random.split(k_drop)
  rngs = {'dropout': drop, 'drop_path': path}
  if lifter_state:
    pred, upd = model.lifter.apply(variables, x, train=True, rngs=rngs, mutable=list(lifter_state))
    new_state.update(upd)
  else:
    pred = model.lifter.apply(variables, x, train=True, rngs=rngs)
  y = jnp.concatenate(targets, 0)
  wts = jnp.concatenate(weights, 0)
  valid = jnp.concatenate([weight] * len(targets), 0) > 0
  total, parts = losses_lib.combine(
    dict(config.method.loss), pred, {'pose3d_cam': y, 'valid': valid, 'kp2d_norm': x}
  )
  w = wts.max(axis=-1)
  loss = jnp.sum(total * w) / jnp.maximum(jnp.sum((w > 0) * 1.0), 1.0)
  per = lambda i: (
    jnp.sum(total[i * b : (i + 1) * b] * (weight.max(-1) > 0))
    / jnp.maximum(  # noqa: E731
      jnp.sum(weight.max(-1) > 0), 1.0
    )
  )
  scalars.update({'loss': loss, 'loss/source': per(0)})
  if d['lpa']:
    scalars['loss/augmented'] = per(1)
  return loss, (scalars, new_state)


def predict(model: Networks, variables, kp2d_norm, config):
  """kp2d_norm (B, T, J, C_in) -> (B, T_out, J, 3) metres: the adapted lifter (flip test as
  `supervised.predict`); LPA's networks are not used at inference."""
  lifter_vars = {k: v for k, v in variables.items() if k != 'lpa'}
  return supervised.predict(model.lifter, lifter_vars, kp2d_norm, config)


def source_data(config):
  """The source-domain data block: `method.kwargs.source` with the target's window length, mode and
  batch size (one source batch per target batch; centre mode also gives the whole window's 3D)."""
  return paired.source_block(
    'poseda',
    settings(config)['source'],
    config.data,
    stride=config.data.stride,
    mode=config.data.mode,
    use_conf=False,
    window_targets=config.data.mode == 'center',
  )


# Target windows (config.data, its train_split; only their 2D and cameras are used) paired with
# cycled source windows: {'target': batch, 'source': batch} (`jaxpose.data.paired`).
train_iterator = paired.method_train_iterator(source_data)


METHOD = Method(
  loss_fn=loss_fn,
  predict=predict,
  make_model=make_model,
  init_variables=init_variables,
  train_iterator=train_iterator,
)
