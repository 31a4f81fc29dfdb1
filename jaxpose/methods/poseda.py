"""PoseDA's Global Position Alignment (GPA) and the screen-normalisation conversions it needs.

Paper: Chai et al., "Global Adaptation meets Local Generalization: Unsupervised Domain Adaptation
for 3D Human Pose Estimation", ICCV 2023, arXiv:2303.16456. Official release:
github.com/rese1f/PoseDA at 7934411098ce74e88e6d97f29dc1b06e68c6bd65 (the `gpa` function in
README.md is the only released code); research/poseda.md §2.1 and §8. Written from the released
function's semantics; no code copied. LPA and the adaptation loop are not here (not released).

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

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxpose.geometry._array import namespace


def gpa_root(
  source_3d: ArrayLike,
  target_2d: ArrayLike,
  camera_params: ArrayLike,
  *,
  key: jax.Array | None = None,
  perm: ArrayLike | None = None,
  min_box: float = 0.0,
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """The GPA root position of each source pose.

  Args:
    source_3d: (N, J, 3) metres, camera frame (joint 0 = root).
    target_2d: (N, J, 2) PoseDA-normalised screen coordinates.
    camera_params: (N, 4) [fx, fy, cx, cy], PoseDA-normalised.
    key: PRNG key for the pairing permutation (ignored when `perm` is given).
    perm: (N,) int permutation to replay (e.g. the fixture's recorded torch.randperm).
    min_box: lower bound on the 2D box size s (0: released behaviour).

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
  fx, fy = cam[0, 0], cam[0, 1]
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
