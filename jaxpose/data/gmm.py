"""Per-joint Gaussian mixtures of 2D keypoints (DiffPose's GMM inputs) and their file format.

DiffPose (research/diffpose.md §1, §3.2, §7) feeds per-joint 2D mixtures: each joint of each frame
has K kernels [w, mu_x, mu_y, s_x, s_y]; training draws one kernel per joint with the weights and
uses its mean as the uv target and its s as the uv noise scale. The authors never released the
conversion (issues Diffpose #5, #19, Diffpose_video #1) and their files hold (1, 0, 0) weights.
This module builds real mixtures:

  fit_heatmaps      weighted EM with diagonal covariances on each joint's heatmap (the paper's
                    construction): K kernels initialised at the K strongest separated peaks.
  from_keypoints    a mixture from a detection and its confidence c when no heatmap exists
                    (jaxpose's construction, not the paper's): kernel 0 at the detection
                    (weight c, std `std_px`), kernel 1 at the left/right partner's detection
                    (weight (1 - c) swap_prob; 0 for centre joints), kernel 2 a broad kernel at
                    the detection (the remaining weight, std `broad_std_px`). c = 1 gives the
                    released (1, 0, 0) files.
  degenerate        the released layout: (1, 0, 0) weights, one constant scale.

File format (`data_2d_h36m_<source>_gmm.npz`, the layout of the authors' files, which the h36m
builder's `*_gmm` configs read):
  positions_2d  pickled {subject: {action: [one (T, J, K, 5) float32 array per camera]}} (the
                VideoPose3D 2D layout with a kernel axis), columns [w, mu_x, mu_y, s_x, s_y]:
                w >= 0 summing to 1 over K; mu in pixels; s the uv noise scale in normalised
                screen units (a pixel std times 2 / image width), the value that multiplies eps.
  metadata      {'format': 'jaxpose-gmm-1', 'num_joints', 'num_kernels', 'keypoints_symmetry',
                'method', 'units': {...}}.
Mixture arrays returned by the fitting functions keep the std in pixels (columns 3:5);
`to_file_units` converts them. Run `jaxpose data gmm --help` to convert a VideoPose3D
2D file (no confidences: the degenerate mixture unless `--conf` gives a confidence file).
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxpose.data.io import DataFormatError, as_array, load_npz_dict

FORMAT = 'jaxpose-gmm-1'
H36M_PAIRS = ((4, 1), (5, 2), (6, 3), (11, 14), (12, 15), (13, 16))  # (left, right)


# ------------------------------------------------------------------------------- fitting


def _peaks(hm: jax.Array, k: int, radius: float, min_peak: float) -> tuple[jax.Array, jax.Array]:
  """The K strongest modes of one heatmap (H, W), each suppressing a disc of `radius` px.

  Modes are local maxima (3 x 3) of at least `min_peak` times the global maximum. Returns (K, 2)
  xy and (K,) validity (False once the modes run out; the first pick is always valid)."""
  h, w = hm.shape
  yy, xx = jnp.mgrid[0:h, 0:w]
  pooled = jax.lax.reduce_window(hm, -jnp.inf, jax.lax.max, (3, 3), (1, 1), 'SAME')
  is_mode = (hm >= pooled) & (hm >= min_peak * hm.max())

  def pick(m, _):
    i = jnp.argmax(m)
    y, x = i // w, i % w
    ok = is_mode[y, x] & jnp.isfinite(m[y, x])
    m = jnp.where((yy - y) ** 2 + (xx - x) ** 2 <= radius**2, -jnp.inf, m)
    return m, (jnp.stack([x, y]).astype(jnp.float32), ok)

  _, (xy, ok) = jax.lax.scan(pick, jnp.where(is_mode, hm, -jnp.inf), None, length=k)
  return xy, ok.at[0].set(True)


def _em(
  hm: jax.Array, k: int, iters: int, min_std: float, radius: float, min_peak: float
) -> jax.Array:
  """Weighted diagonal-covariance EM on one heatmap: (H, W) -> (K, 5) [w, mx, my, sx, sy].

  Kernels whose initial peak is not a real mode start (and stay) at weight 0 with the first
  kernel's mean, so a unimodal heatmap gives the (1, 0, 0) mixture rather than split kernels."""
  h, w = hm.shape
  yy, xx = jnp.mgrid[0:h, 0:w]
  pts = jnp.stack([xx.ravel(), yy.ravel()], -1).astype(jnp.float32)  # (P, 2)
  mass = jnp.maximum(hm.ravel(), 0.0)
  mass = jnp.where(mass.sum() > 0, mass / jnp.maximum(mass.sum(), 1e-12), 1.0 / mass.size)
  mu, ok = _peaks(jnp.maximum(hm, 0.0), k, radius, min_peak)
  mu = jnp.where(ok[:, None], mu, mu[:1])
  var = jnp.full((k, 2), max(radius / 2, min_std) ** 2)
  pi = ok / ok.sum()

  def step(_, st):
    pi, mu, var = st
    d2 = jnp.square(pts[:, None] - mu[None]) / var[None]  # (P, K, 2)
    log_pi = jnp.where(pi > 0, jnp.log(jnp.where(pi > 0, pi, 1.0)), -jnp.inf)
    logp = log_pi - 0.5 * d2.sum(-1) - 0.5 * jnp.log(var).sum(-1)
    r = jax.nn.softmax(logp, axis=-1) * mass[:, None]  # (P, K) weighted responsibilities
    nk = r.sum(0)
    safe = jnp.maximum(nk, 1e-12)
    mu_new = (r[..., None] * pts[:, None]).sum(0) / safe[:, None]
    var_new = (r[..., None] * jnp.square(pts[:, None] - mu_new[None])).sum(0) / safe[:, None]
    alive = nk > 1e-6
    mu = jnp.where(alive[:, None], mu_new, mu)
    var = jnp.where(alive[:, None], jnp.maximum(var_new, min_std**2), var)
    return jnp.where(alive, nk, 0.0) / jnp.where(alive, nk, 0.0).sum(), mu, var

  pi, mu, var = jax.lax.fori_loop(0, iters, step, (pi, mu, var))
  order = jnp.argsort(-pi)
  return jnp.concatenate([pi[order, None], mu[order], jnp.sqrt(var[order])], -1)


def fit_heatmaps(
  heatmaps: np.ndarray,
  *,
  num_kernels: int = 3,
  num_iters: int = 30,
  min_std: float = 0.5,
  peak_radius: float = 2.0,
  min_peak: float = 0.1,
  scale: np.ndarray | float = 1.0,
  offset: np.ndarray | float = 0.0,
) -> np.ndarray:
  """Fits a K-kernel mixture to every joint heatmap.

  Args:
    heatmaps: (..., J, H, W) non-negative heatmaps (e.g. HRNet/CPN outputs).
    num_kernels: K.
    num_iters: EM iterations.
    min_std: floor of each kernel's std, in heatmap pixels.
    peak_radius: suppression radius of the peak initialisation, heatmap pixels.
    min_peak: a further kernel starts only at a local maximum of at least this fraction of the
      heatmap's maximum; otherwise it keeps weight 0.
    scale, offset: the heatmap -> image pixel map, image = offset + scale * heatmap_xy (e.g. the
      crop's size / heatmap size and its corner); broadcastable to (..., 2). Pixel centres are
      at integer heatmap coordinates.

  Returns:
    (..., J, K, 5) float32 [w, mu_x, mu_y, s_x, s_y], kernels by decreasing weight, mean and std
    in image pixels.
  """
  hm = jnp.asarray(heatmaps, jnp.float32)
  lead = hm.shape[:-2]
  fit = jax.jit(jax.vmap(lambda m: _em(m, num_kernels, num_iters, min_std, peak_radius, min_peak)))
  out = np.array(fit(hm.reshape(-1, *hm.shape[-2:]))).reshape(*lead, num_kernels, 5)
  scale = np.broadcast_to(np.asarray(scale, np.float32), (*lead[:-1], 2))[..., None, None, :]
  offset = np.broadcast_to(np.asarray(offset, np.float32), (*lead[:-1], 2))[..., None, None, :]
  out[..., 1:3] = offset + scale * out[..., 1:3]
  out[..., 3:5] = np.abs(scale) * out[..., 3:5]
  return out.astype(np.float32)


def from_keypoints(
  kp2d_px: np.ndarray,
  conf: np.ndarray | None = None,
  *,
  pairs: Sequence[tuple[int, int]] = H36M_PAIRS,
  std_px: float = 5.0,
  broad_std_px: float = 20.0,
  swap_prob: float = 0.5,
) -> np.ndarray:
  """A 3-kernel mixture per joint from a detection and its confidence (see the module docstring).

  Args:
    kp2d_px: (..., J, 2) detections, pixels.
    conf: (..., J) confidences in [0, 1] (clipped); None means 1 (the degenerate mixture).
    pairs: (left, right) joint pairs whose detections a detector may swap.
    std_px: std of the detection and swap kernels, pixels.
    broad_std_px: std of the broad kernel, pixels.
    swap_prob: share of the missing confidence given to the swapped location.

  Returns:
    (..., J, 3, 5) float32 [w, mu_x, mu_y, s_x, s_y], std in pixels.
  """
  kp = np.asarray(kp2d_px, np.float32)
  c = np.ones(kp.shape[:-1], np.float32) if conf is None else np.clip(conf, 0, 1).astype(np.float32)
  partner = np.arange(kp.shape[-2])
  has = np.zeros(kp.shape[-2], bool)
  for a, b in pairs:
    partner[a], partner[b] = b, a
    has[a] = has[b] = True
  w0 = c
  w1 = (1 - c) * swap_prob * has
  w2 = 1 - w0 - w1
  ones = np.ones_like(c)
  k0 = np.concatenate([w0[..., None], kp, std_px * ones[..., None].repeat(2, -1)], -1)
  k1 = np.concatenate([w1[..., None], kp[..., partner, :], std_px * np.stack([ones] * 2, -1)], -1)
  k2 = np.concatenate([w2[..., None], kp, broad_std_px * np.stack([ones] * 2, -1)], -1)
  return np.stack([k0, k1, k2], -2).astype(np.float32)


def degenerate(kp2d_px: np.ndarray, std_px: float = 5.0, num_kernels: int = 3) -> np.ndarray:
  """The released layout: all weight on kernel 0 at the detection. (..., J, 2) -> (..., J, K, 5)."""
  mix = np.zeros((*np.shape(kp2d_px)[:-1], num_kernels, 5), np.float32)
  mix[..., 0] = 0.0
  mix[..., 0, 0] = 1.0
  mix[..., 1:3] = np.asarray(kp2d_px, np.float32)[..., None, :]
  mix[..., 3:5] = std_px
  return mix


def to_file_units(mix_px: np.ndarray, res_w: float) -> np.ndarray:
  """Std columns from pixels to the normalised noise scale of the file format (x 2 / width)."""
  out = np.array(mix_px, np.float32, copy=True)
  out[..., 3:5] *= 2.0 / float(res_w)
  return out


def normalise(mix_file: np.ndarray, res_w: float, res_h: float) -> np.ndarray:
  """File columns -> the method's: means to normalised screen coordinates (x / w * 2 - [1, h/w]),
  weights and scales unchanged. (..., K, 5) -> same."""
  out = np.array(mix_file, np.float32, copy=True)
  out[..., 1:3] = out[..., 1:3] / float(res_w) * 2 - np.array([1.0, res_h / res_w], np.float32)
  return out


def best_kernel_mean(mix: np.ndarray) -> np.ndarray:
  """The mean of each joint's heaviest kernel (the 2D the release feeds when w = (1, 0, 0)):
  (..., J, K, 5) -> (..., J, 2)."""
  mix = np.asarray(mix)
  k = np.argmax(mix[..., 0], axis=-1)
  return np.take_along_axis(mix[..., 1:3], k[..., None, None], axis=-2)[..., 0, :]


# ---------------------------------------------------------------------------------- files


def validate(mix: np.ndarray, file: Any = '', key: str = '', num_joints: int | None = None):
  """Checks a (T, J, K, 5) mixture array: finite, weights >= 0 summing to 1, scales > 0."""
  arr = as_array(mix, file, key, (None, num_joints, None, 5))
  if not np.isfinite(arr).all():
    raise DataFormatError(file, key, 'finite values', 'NaN or inf')
  w = arr[..., 0]
  if (w < 0).any() or not np.allclose(w.sum(-1), 1.0, atol=1e-4):
    raise DataFormatError(
      file,
      key,
      'kernel weights >= 0 summing to 1 over K',
      f'sums in [{w.sum(-1).min():.4g}, {w.sum(-1).max():.4g}]',
    )
  if (arr[..., 3:5] <= 0).any():
    raise DataFormatError(file, key, 'positive scales (columns 3:5)', 'a scale <= 0')
  return arr


def write_file(
  path: str | pathlib.Path,
  positions_2d: Mapping[str, Mapping[str, Sequence[np.ndarray | None]]],
  *,
  method: str,
  keypoints_symmetry: Any = None,
) -> pathlib.Path:
  """Writes a GMM file (format in the module docstring) after validating every array.

  Args:
    path: output `.npz`.
    positions_2d: {subject: {action: [(T, J, K, 5) per camera, file units]}}.
    method: how the mixtures were made (stored in the metadata).
    keypoints_symmetry: VideoPose3D's [left, right] lists, copied from the source file.
  """
  path = pathlib.Path(path)
  shapes = set()
  clean: dict[str, dict[str, list]] = {}
  for s, acts in positions_2d.items():
    clean[s] = {}
    for a, views in acts.items():
      clean[s][a] = [
        None if v is None else validate(v, path, f'positions_2d[{s!r}][{a!r}][{i}]')
        for i, v in enumerate(views)
      ]
      shapes |= {v.shape[1:3] for v in clean[s][a] if v is not None}
  if len(shapes) > 1:
    raise DataFormatError(path, 'positions_2d', 'one (J, K) for every array', str(sorted(shapes)))
  j, k = shapes.pop() if shapes else (0, 0)
  meta = {
    'format': FORMAT,
    'num_joints': j,
    'num_kernels': k,
    'method': method,
    'keypoints_symmetry': keypoints_symmetry,
    'units': {'w': 'weight', 'mu': 'pixels', 's': 'normalised screen units (2 / width)'},
  }
  tmp = path.with_name(path.name + '.tmp.npz')
  np.savez_compressed(
    tmp, positions_2d=np.array(clean, dtype=object), metadata=np.array(meta, dtype=object)
  )
  tmp.replace(path)  # never leave a partial file under the final name
  return path


def read_file(path: str | pathlib.Path) -> dict[str, dict[str, list[np.ndarray | None]]]:
  """Reads and validates a GMM file: {subject: {action: [(T, J, K, 5) or None per camera]}}."""
  pos = load_npz_dict(path, 'positions_2d')
  out: dict[str, dict[str, list]] = {}
  for s, acts in pos.items():
    if not isinstance(acts, Mapping):
      raise DataFormatError(path, f'positions_2d[{s!r}]', 'a dict of actions', type(acts).__name__)
    out[s] = {
      a: [
        None if v is None else validate(v, path, f'positions_2d[{s!r}][{a!r}][{i}]')
        for i, v in enumerate(views)
      ]
      for a, views in acts.items()
    }
  return out


def convert_vp3d_file(
  src: str | pathlib.Path,
  dst: str | pathlib.Path,
  *,
  conf_file: str | pathlib.Path | None = None,
  res_w: Mapping[str, Sequence[float]] | None = None,
  **kw: Any,
) -> pathlib.Path:
  """VideoPose3D `data_2d_h36m_<source>.npz` (+ optional confidences) -> a GMM file.

  Args:
    src: the 2D file (positions_2d {subject: {action: [(T, J, 2) per camera]}}, pixels).
    dst: output path.
    conf_file: an npz with the same nesting under 'confidence' ((T, J) per camera); without it
      every mixture is degenerate (c = 1).
    res_w: {subject: [width per camera]}; default the H36M cameras (1000 px).
    **kw: `from_keypoints` options (std_px, broad_std_px, swap_prob, pairs).
  """
  from jaxpose.geometry import camera

  pos = load_npz_dict(src, 'positions_2d')
  conf = load_npz_dict(conf_file, 'confidence') if conf_file else None
  if res_w is None:
    res_w = {s: [c['res_w'] for c in cams] for s, cams in camera.h36m_cameras(True).items()}
  out: dict[str, dict[str, list]] = {}
  for s, acts in pos.items():
    out[s] = {}
    for a, views in acts.items():
      mixes = []
      for i, kp in enumerate(views):
        if kp is None:
          mixes.append(None)
          continue
        kp = as_array(kp, src, f'positions_2d[{s!r}][{a!r}][{i}]', (None, None, 2))
        c = None if conf is None else conf[s][a][i]
        widths = res_w.get(s, [1000] * len(views))
        mixes.append(to_file_units(from_keypoints(kp, c, **kw), widths[i]))
      out[s][a] = mixes
  with np.load(src, allow_pickle=True) as z:
    sym = z['metadata'].item().get('keypoints_symmetry') if 'metadata' in z.files else None
  method = 'from_keypoints' + ('' if conf_file else ' (no confidences: degenerate)')
  return write_file(dst, out, method=method, keypoints_symmetry=sym)
