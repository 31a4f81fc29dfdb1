"""A deterministic SYNTHETIC body model in the SMPL file format (it is not SMPL; no SMPL data).

The real SMPL files are licence-gated, so tests, the embedded default dataset and demos use this
stand-in. It has the official keys, dtypes and shapes, and it looks like a human in a T-pose, but
every number is generated here from a hand-written description of a body:

* Rest joints: 24 joints in SMPL's kinematic tree and order, at human proportions in SMPL's frame
  (metres, y up, facing +z, the body's left is +x; pelvis about 1 m above the soles).
* Surface: the zero set of a smooth union of tapered capsules and ellipsoids around those joints,
  extracted by marching tetrahedra (2 cm grid for 'full'), reduced by quadric edge collapse to
  exactly the target vertex count, then evened out by valence-equalising edge flips and tangential
  relaxation projected back onto the implicit surface. The result is a closed, oriented, genus-0
  2-manifold, so F = 2V - 4: 6890 vertices and 13776 faces for 'full' (SMPL's counts), 400 and 796
  for 'small'.
* Skinning weights: a softmax over each vertex's distance to the 24 bones (segments from a joint to
  its children; leaves to an end point; ankles also to the heel), temperature 1.5 cm, the 4 largest
  kept (more on exact ties), rows summing to 1.
* J_regressor (24, V): per joint, non-negative weights on the vertices near it (smooth Gaussian prior,
  minimum-change correction) that reproduce the designed joint exactly on the template.
* shapedirs (V, 3, 10): hand-designed smooth directions: 0 size about the pelvis (height), 1 girth
  along the normals, 2 leg length, 3 shoulder width, 4 arm length, 5 hip width, 6 belly, 7 head
  size, 8 torso length, 9 a smooth symmetric random bump field.
* posedirs (V, 3, 207): small correctives near each joint (an outward bulge growing with the bend,
  3 - trace R, plus small seeded terms on all nine entries), at most about 1 cm.
* Regressors (`synthetic_regressors`): H36M-17 and SPIN's 9 extra joints built like the J_regressor
  from designed target points, and the 21 landmark vertices (nose, eyes, ears, toes, heels,
  fingertips) as the vertices nearest designed surface points.

Determinism: pure numpy with fixed seeds and index tie-breaking; the same machine gives the same
bytes every time (different BLAS/SIMD builds could round differently). The 'full' model takes about
10 s of CPU to build; results are cached per process (`synthetic_arrays` returns copies).
"""

from __future__ import annotations

import functools
import os
import pathlib
from typing import Any

import jax.numpy as jnp
import numpy as np

from jaxpose.body import _surface, mesh
from jaxpose.body.regressors import JointRegressors
from jaxpose.body.smpl import SMPL_PARENTS, BodyModel, model_from_arrays, save_npz, save_pkl

VARIANTS = {
  'full': {'num_vertices': 6890, 'spacing': 0.02, 'length_weight': 1e-6, 'relax_iters': 5},
  'small': {'num_vertices': 400, 'spacing': 0.04, 'length_weight': 1e-4, 'relax_iters': 6},
}
NUM_BETAS = 10
SEED = 20240501

# Designed rest joints (metres), SMPL order: see jaxpose.body.smpl.SMPL_JOINT_NAMES.
_LEFT_JOINTS = {
  0: (0.000, -0.225, 0.025),
  1: (0.070, -0.315, 0.015),
  3: (0.000, -0.110, 0.000),
  4: (0.105, -0.700, 0.010),
  6: (0.000, 0.025, 0.010),
  7: (0.085, -1.100, -0.030),
  9: (0.000, 0.080, 0.030),
  10: (0.115, -1.155, 0.090),
  12: (0.000, 0.290, 0.000),
  13: (0.075, 0.195, 0.005),
  15: (0.000, 0.365, 0.045),
  16: (0.170, 0.225, -0.010),
  18: (0.430, 0.215, -0.030),
  20: (0.680, 0.220, -0.025),
  22: (0.765, 0.210, -0.035),
}
_MIRROR = np.array([-1.0, 1.0, 1.0])


def rest_joints() -> np.ndarray:
  """The designed rest joints (24, 3) float64, metres (left joints mirrored to the right)."""
  j = np.zeros((24, 3))
  for i, p in _LEFT_JOINTS.items():
    j[i] = p
    if i in (1, 4, 7, 10, 13, 16, 18, 20, 22):
      j[i + 1] = np.asarray(p) * _MIRROR
  return j


def _extra_bones(j: np.ndarray) -> dict[int, list[np.ndarray]]:
  """Bone end points besides the children: leaf tips (toes, head top, hands) and the heels."""
  return {
    7: [j[7] + (0.0, -0.045, -0.045)],
    8: [j[8] + (0.0, -0.045, -0.045)],
    10: [j[10] + (0.0, -0.02, 0.07)],
    11: [j[11] + (0.0, -0.02, 0.07)],
    15: [np.array([0.0, 0.55, 0.03])],
    22: [j[22] + (0.085, 0.0, 0.005)],
    23: [j[23] + (-0.085, 0.0, 0.005)],
  }


def body_sdf(p: np.ndarray) -> np.ndarray:
  """Approximate signed distance (metres, negative inside) of the synthetic body. p: (..., 3)."""
  j = rest_joints()
  prims = [
    _surface.ellipsoid(p, (0, -0.25, 0.01), (0.175, 0.13, 0.12)),  # hips
    _surface.ellipsoid(p, (0, -0.07, 0.015), (0.15, 0.16, 0.115)),  # waist
    _surface.ellipsoid(p, (0, 0.10, 0.02), (0.17, 0.15, 0.125)),  # chest
    _surface.ellipsoid(p, (0, 0.20, -0.005), (0.19, 0.07, 0.095)),  # shoulder girdle
    _surface.round_cone(p, (0, 0.2, -0.005), (0, 0.34, 0.01), 0.062, 0.055),  # neck
    _surface.ellipsoid(p, (0, 0.44, 0.03), (0.085, 0.115, 0.10)),  # head
    _surface.ellipsoid(p, (0, 0.43, 0.12), (0.018, 0.025, 0.025)),  # nose
  ]
  for m in (np.ones(3), _MIRROR):
    heel = j[7] * m + (0, -0.045, -0.045)
    ball = j[10] * m + (0, -0.01, 0)
    prims += [
      _surface.round_cone(p, j[1] * m + (0, 0.02, 0), j[4] * m, 0.085, 0.055),  # thigh
      _surface.round_cone(p, j[4] * m, j[7] * m, 0.055, 0.038),  # shin
      _surface.round_cone(p, j[7] * m, heel, 0.038, 0.032),
      _surface.round_cone(p, heel, ball, 0.032, 0.035),
      _surface.round_cone(p, ball, j[10] * m + (0, -0.02, 0.07), 0.035, 0.022),  # toes
      _surface.round_cone(p, j[16] * m, j[18] * m, 0.052, 0.040),  # upper arm
      _surface.round_cone(p, j[18] * m, j[20] * m, 0.040, 0.030),  # forearm
      _surface.ellipsoid(p, j[22] * m + (0, 0, 0.005), (0.085, 0.022, 0.045)),  # hand
    ]
  d = prims[0]
  for q in prims[1:]:
    d = _surface.smooth_min(d, q, 0.03)
  return d


def _surface_mesh(num_vertices: int, spacing: float, length_weight: float, relax_iters: int):
  lo, hi = np.array([-0.92, -1.24, -0.2]), np.array([0.92, 0.6, 0.26])
  n = np.ceil((hi - lo) / spacing).astype(int) + 1
  grid = np.stack(
    np.meshgrid(*[lo[i] + spacing * np.arange(n[i]) for i in range(3)], indexing='ij'), -1
  )
  values = body_sdf(grid.reshape(-1, 3)).reshape(grid.shape[:3])
  v, f = _surface.marching_tetrahedra(values, lo, spacing)
  kept, f = mesh.decimate(v, f, num_vertices, length_weight=length_weight)
  v = v[kept]
  for _ in range(relax_iters):
    _surface.flip_edges(v, f)
    v = _surface.relax(v, f, body_sdf)
  topo = mesh.topology(f, len(v))
  if not (topo['closed'] and topo['vertex_manifold'] and topo['genus'] == 0):
    raise RuntimeError(f'synthetic body mesh is not a closed genus-0 manifold: {topo}')
  return v, f


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
  ab = b - a
  t = np.clip((p - a) @ ab / (ab @ ab), 0.0, 1.0)
  return np.linalg.norm(p - (a + t[:, None] * ab), axis=-1)


def _skinning_weights(v: np.ndarray, j: np.ndarray) -> np.ndarray:
  extra = _extra_bones(j)
  d = np.full((len(v), 24), np.inf)
  for i in range(24):
    tips = [j[c] for c, p in enumerate(SMPL_PARENTS) if p == i] + extra.get(i, [])
    for tip in tips:
      d[:, i] = np.minimum(d[:, i], _segment_distance(v, j[i], tip))
  logits = -(d - d.min(axis=1, keepdims=True)) / 0.015
  w = np.exp(logits)
  # Keep the 4 largest influences per vertex (SMPL rows have few nonzeros).
  cut = np.sort(w, axis=1)[:, -4][:, None]
  w = np.where(w >= cut, w, 0.0)
  w[w < 1e-3 * w.max(axis=1, keepdims=True)] = 0.0
  return w / w.sum(axis=1, keepdims=True)


def _project_simplex(w: np.ndarray) -> np.ndarray:
  """Euclidean projection onto {w >= 0, sum w = 1}."""
  u = np.sort(w)[::-1]
  css = np.cumsum(u) - 1.0
  k = np.nonzero(u - css / np.arange(1, len(w) + 1) > 0)[0][-1]
  return np.maximum(w - css[k] / (k + 1), 0.0)


def _convex_fit(p: np.ndarray, target: np.ndarray, prior: np.ndarray) -> np.ndarray:
  """Weights on the simplex with p.T @ w closest to target (projected gradient), started at prior."""
  w = prior / prior.sum()
  step = 0.5 / max(np.linalg.eigvalsh(p @ p.T).max(), 1e-12)
  for _ in range(3000):
    w = _project_simplex(w - step * 2.0 * p @ (p.T @ w - target))
  return w


def _regressor_rows(v: np.ndarray, targets: np.ndarray) -> np.ndarray:
  """(K, V) non-negative rows summing to 1 that regress `targets` from the template `v`.

  Per target: the smallest change (metric = a Gaussian prior on the distance) to that prior that
  reproduces the target exactly with non-negative weights, on the vertices within a growing radius
  (an active-set loop drops the most negative weight). When the target is outside the convex hull
  of the nearby vertices (a coarse mesh can cut inside thin parts), the closest convex combination is
  used instead; `_build` then defines the model's joints as the regressed ones.
  """
  rows = np.zeros((len(targets), len(v)))
  for k, target in enumerate(targets):
    d = np.linalg.norm(v - target, axis=1)
    dmin = d.min()
    for factor in (2.0, 2.5, 3.0, 4.0):
      cand = np.nonzero(d <= factor * dmin + 1e-3)[0]
      prior = np.exp(-0.5 * (d[cand] / dmin) ** 2)
      active = np.ones(len(cand), bool)
      w = None
      while active.sum() >= 4:
        idx = cand[active]
        s = prior[active]
        w0 = s / s.sum()
        a = np.vstack([v[idx].T, np.ones(len(idx))])  # (4, k)
        b = np.append(target, 1.0)
        lam = np.linalg.lstsq((a * s) @ a.T, b - a @ w0, rcond=None)[0]
        w = w0 + s * (a.T @ lam)
        if w.min() >= 0:
          break
        active[np.nonzero(active)[0][np.argmin(w)]] = False  # drop the most negative
        w = None
      if w is not None and np.allclose(v[idx].T @ w, target, atol=1e-9):
        rows[k, idx] = w
        break
    else:
      cand = np.nonzero(d <= 2.0 * dmin + 1e-3)[0]
      rows[k, cand] = _convex_fit(v[cand], target, np.exp(-0.5 * (d[cand] / dmin) ** 2))
  return rows


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
  t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
  return t * t * (3 - 2 * t)


def _shapedirs(v: np.ndarray, n: np.ndarray, j: np.ndarray) -> np.ndarray:
  x, y, z = v[:, 0], v[:, 1], v[:, 2]
  ax, sx = np.abs(x), np.sign(x)
  y_hip = j[1, 1]
  leg = _smoothstep(y_hip + 0.03, y_hip - 0.08, y)
  arm = _smoothstep(0.12, 0.22, ax) * _smoothstep(0.05, 0.12, y)
  head = _smoothstep(0.30, 0.36, y)
  torso = (1 - leg) * (1 - arm) * (1 - head)
  zeros = np.zeros_like(x)
  d = np.zeros((len(v), 3, NUM_BETAS))
  d[:, :, 0] = 0.04 * (v - j[0])
  d[:, :, 1] = n * (0.012 * torso + 0.006 * (leg + arm) + 0.003 * head)[:, None]
  d[:, :, 2] = np.stack([zeros, -0.04 * _smoothstep(y_hip, y_hip - 0.4, y), zeros], -1)
  d[:, :, 3] = np.stack(
    [0.02 * sx * _smoothstep(0.0, 0.17, ax) * _smoothstep(0.0, 0.15, y), zeros, zeros], -1
  )
  d[:, :, 4] = np.stack([0.05 * sx * np.clip((ax - 0.17) / 0.6, 0, 1) * arm, zeros, zeros], -1)
  d[:, :, 5] = np.stack([0.015 * np.tanh(x / 0.08) * _smoothstep(0.0, -0.2, y), zeros, zeros], -1)
  belly = np.exp(-0.5 * np.sum((v - (0, -0.08, 0.12)) ** 2, -1) / 0.08**2) * np.clip(n[:, 2], 0, 1)
  d[:, :, 6] = np.stack([zeros, zeros, 0.03 * belly], -1)
  d[:, :, 7] = 0.08 * (v - (0, 0.44, 0.03)) * head[:, None]
  d[:, :, 8] = np.stack([zeros, 0.03 * _smoothstep(y_hip, 0.3, y), zeros], -1)
  rng = np.random.default_rng(SEED)
  freq = rng.normal(0.0, 6.0, (6, 3))
  phase = rng.uniform(0, 2 * np.pi, 6)
  amp = rng.normal(0.0, 1.0, 6)
  sym = np.stack([ax, y, z], -1)
  d[:, :, 9] = n * (0.004 * np.sin(sym @ freq.T + phase) @ amp / np.sqrt(6))[:, None]
  return d


def _posedirs(n: np.ndarray, w: np.ndarray) -> np.ndarray:
  rng = np.random.default_rng(SEED + 1)
  out = np.zeros((len(n), 3, 207))
  for i in range(1, 24):
    region = 4.0 * w[:, i] * w[:, SMPL_PARENTS[i]]  # 1 where the joint and its parent blend evenly
    coef = 0.0015 * rng.normal(size=9)
    coef[[0, 4, 8]] -= 0.004  # -(trace R - 3) >= 0: bulge outwards as the joint bends
    out[:, :, 9 * (i - 1) : 9 * i] = (region[:, None] * n)[:, :, None] * coef
  return out


def _h36m_targets(j: np.ndarray) -> np.ndarray:
  r_hip, l_hip = j[2] + (-0.01, -0.03, 0.0), j[1] + (0.01, -0.03, 0.0)
  pelvis = 0.5 * (r_hip + l_hip)
  thorax = 0.5 * (j[16] + j[17])
  return np.stack(
    [
      pelvis,
      r_hip,
      j[5],
      j[8],
      l_hip,
      j[4],
      j[7],
      0.5 * (pelvis + thorax),  # spine
      thorax,
      np.array([0.0, 0.43, 0.10]),  # neck/nose
      np.array([0.0, 0.50, 0.03]),  # head
      j[16],
      j[18],
      j[20],
      j[17],
      j[19],
      j[21],
    ]
  )


def _extra_targets(j: np.ndarray) -> np.ndarray:
  h = _h36m_targets(j)
  return np.stack(
    [
      h[1],  # right hip
      h[4],  # left hip
      np.array([0.0, 0.30, 0.0]),  # neck (LSP)
      np.array([0.0, 0.54, 0.03]),  # top of head (LSP)
      h[0],  # pelvis (MPII)
      np.array([0.0, 0.25, 0.0]),  # thorax (MPII)
      h[7],  # spine (H36M)
      np.array([0.0, 0.36, 0.08]),  # jaw (H36M)
      h[10],  # head (H36M)
    ]
  )


def _landmark_points(j: np.ndarray) -> np.ndarray:
  """Surface points for `regressors.VERTEX_JOINT_NAMES` (nearest vertices are picked)."""
  pts = [
    (0.0, 0.43, 0.16),  # nose
    (-0.035, 0.46, 0.13),  # right eye
    (0.035, 0.46, 0.13),  # left eye
    (-0.09, 0.43, 0.03),  # right ear
    (0.09, 0.43, 0.03),  # left ear
  ]
  for m in (np.ones(3), _MIRROR):  # left foot, then right foot
    toe = j[10] * m + (0, -0.02, 0.07)
    pts += [
      toe + m * (-0.015, -0.01, 0.02),
      toe + m * (0.025, -0.01, 0.0),
      j[7] * m + (0, -0.08, -0.09),
    ]
  for m in (np.ones(3), _MIRROR):  # left hand, then right hand: thumb, index .. pinky
    tip = j[22] * m + m * (0.085, 0.0, 0.005)
    pts += [j[22] * m + m * (-0.02, 0.0, 0.05)]
    pts += [tip + (0, 0, dz) for dz in (0.03, 0.01, -0.01, -0.03)]
  return np.asarray(pts)


@functools.lru_cache(maxsize=4)
def _build(variant: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
  if variant not in VARIANTS:
    raise ValueError(f'unknown synthetic body variant {variant!r}; valid: {sorted(VARIANTS)}')
  v, f = _surface_mesh(**VARIANTS[variant])
  j = rest_joints()
  normals = mesh.vertex_normals(v, f)
  weights = _skinning_weights(v, j)
  kintree = np.stack([np.array(SMPL_PARENTS, np.int64) % 2**32, np.arange(24)]).astype(np.int64)
  arrays = {
    'v_template': v.astype(np.float64),
    'shapedirs': _shapedirs(v, normals, j),
    'posedirs': _posedirs(normals, weights),
    'J_regressor': _regressor_rows(v, j),
    'weights': weights,
    'kintree_table': kintree,
    'f': f.astype(np.uint32),
    'J': None,  # set below: the joints the J_regressor reproduces
    'bs_type': 'lrotmin',
    'bs_style': 'lbs',
  }
  arrays['J'] = arrays['J_regressor'] @ v
  dist = np.linalg.norm(v[None] - _landmark_points(j)[:, None], axis=-1)
  regs = {
    'J_regressor_h36m': _regressor_rows(v, _h36m_targets(j)),
    'J_regressor_extra': _regressor_rows(v, _extra_targets(j)),
    'vertex_joint_ids': np.argmin(dist, axis=1).astype(np.int64),
  }
  for a in list(arrays.values()) + list(regs.values()):
    if isinstance(a, np.ndarray):
      a.setflags(write=False)
  return arrays, regs


def synthetic_arrays(variant: str = 'full') -> dict[str, Any]:
  """The synthetic model's arrays under the official SMPL keys (plus 'J', 'bs_type', 'bs_style').

  Shapes ('full' / 'small'): v_template (6890 / 400, 3) float64, shapedirs (V, 3, 10) float64,
  posedirs (V, 3, 207) float64, J_regressor (24, V) float64 (dense here; sparse in the .pkl),
  weights (V, 24) float64, kintree_table (2, 24) int64 (root parent 2**32 - 1), f (2V - 4, 3)
  uint32, J (24, 3) float64 rest joints.
  """
  arrays, _ = _build(variant)
  return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in arrays.items()}


def synthetic_regressors(variant: str = 'full') -> dict[str, np.ndarray]:
  """`J_regressor_h36m` (17, V), `J_regressor_extra` (9, V) float64 and `vertex_joint_ids` (21,)
  int64 defined on the synthetic mesh (see `jaxpose.body.regressors`)."""
  _, regs = _build(variant)
  return {k: v.copy() for k, v in regs.items()}


def synthetic_model(variant: str = 'full', *, dtype: Any = jnp.float32) -> BodyModel:
  """The synthetic body as a `BodyModel` (source 'synthetic:<variant>')."""
  return model_from_arrays(synthetic_arrays(variant), source=f'synthetic:{variant}', dtype=dtype)


def synthetic_joint_regressors(variant: str = 'full') -> JointRegressors:
  """The synthetic regressors as float32 `JointRegressors`."""
  r = synthetic_regressors(variant)
  return JointRegressors(
    h36m=jnp.asarray(r['J_regressor_h36m'], jnp.float32),
    extra=jnp.asarray(r['J_regressor_extra'], jnp.float32),
    vertex_ids=jnp.asarray(r['vertex_joint_ids'], jnp.int32),
  )


def write_files(
  directory: str | os.PathLike, variant: str = 'full', *, sampling: bool = True
) -> dict:
  """Writes the synthetic model in the official file layouts, named as users' real files are.

  Files: `SMPL_NEUTRAL.pkl` (chumpy/scipy-style pickle), `SMPL_NEUTRAL.npz`,
  `J_regressor_h36m.npy` (17, V) and `J_regressor_extra.npy` (9, V) float64, `smpl_mean_vertices.npy`
  (the template), and with `sampling` `mesh_downsampling.npz` (levels V -> ceil(V/4) -> ceil(V/16)).

  Returns:
    {name: path} of the written files.
  """
  out = pathlib.Path(directory)
  out.mkdir(parents=True, exist_ok=True)
  arrays, regs = _build(variant)
  paths = {name: out / name for name in ('SMPL_NEUTRAL.pkl', 'SMPL_NEUTRAL.npz')}
  save_pkl(paths['SMPL_NEUTRAL.pkl'], arrays)
  save_npz(paths['SMPL_NEUTRAL.npz'], arrays)
  for key in ('J_regressor_h36m', 'J_regressor_extra'):
    paths[f'{key}.npy'] = out / f'{key}.npy'
    np.save(paths[f'{key}.npy'], regs[key])
  paths['smpl_mean_vertices.npy'] = out / 'smpl_mean_vertices.npy'
  np.save(paths['smpl_mean_vertices.npy'], arrays['v_template'])
  if sampling:
    paths['mesh_downsampling.npz'] = out / 'mesh_downsampling.npz'
    mesh.write_mesh_sampling(
      paths['mesh_downsampling.npz'], mesh.mesh_sampling(arrays['v_template'], arrays['f'])
    )
  return {k: str(v) for k, v in paths.items()}
