"""SMPL-format body model in JAX: shape and pose blend shapes, joint regression, FK and skinning.

SMPL: Loper, Mahmood, Romero, Pons-Moll, Black, "SMPL: A Skinned Multi-Person Linear Model", SIGGRAPH
Asia 2015 (no arXiv; model files at smpl.is.tue.mpg.de under the SMPL licence, which users bring).
The reference implementation the papers of this suite use is `smplx` (github.com/vchoutas/smplx,
`lbs.py`; DSR pins 0.1.13, PMCE ships `smplpytorch`); this is an independent JAX rewrite of the
published equations:

  v_shaped = v_template + shapedirs . betas                                  (B, V, 3)
  J_rest   = J_regressor @ v_shaped                                          (B, J, 3)
  v_posed  = v_shaped + posedirs . vec(R_1..R_{J-1} - I)  (pose feature 9(J-1) = 207)
  G_j      = G_parent(j) [R_j | J_rest_j - J_rest_parent(j)],  G_0 = [R_0 | J_rest_0]
  A_j      = G_j with translation t_j - R^G_j J_rest_j            (rest -> posed, per joint)
  vertices = sum_j weights[v, j] A_j [v_posed, 1] + transl                   (B, V, 3)
  joints   = translations of G_j + transl                                    (B, J, 3)

File layout (the official `.pkl`, or the `.npz` smplx converts it to): `v_template (V, 3)`, `shapedirs
(V, 3, S)` with S >= 10 (300 in SMPL v1.1), `posedirs (V, 3, 9 (J - 1))`, `J_regressor (J, V)` (a
scipy sparse matrix in the pickle), `weights (V, J)`, `kintree_table (2, J)` (row 0 parents, the
root's is 2**32 - 1 or -1; row 1 joint ids), `f (F, 3)`. `.pkl` files are read without chumpy or
scipy (see `_pickle`). Units are the file's: metres for SMPL. Axes: SMPL's, y up, the body faces +z,
its left is +x.

Deviations from smplx: axis-angle goes through unit quaternions (`jaxpose.geometry.rotation`), exact
up to float rounding and with finite gradients at zero rotation (smplx adds 1e-8 to the angle); the
model's arrays are a frozen pytree (`BodyModel`, with `parents` and `source` static) passed to pure
functions, so a jitted `forward` compiles once per model file and input shapes. Value checks
(rotation matrices) run on host numpy inputs only, i.e. outside `jit`; call `check_rotmats` on the
host before a jitted call when the inputs are untrusted.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxpose.body import _pickle
from jaxpose.geometry import rotation, skeleton

SMPL_JOINT_NAMES: tuple[str, ...] = skeleton.get('smpl24').joint_names
SMPL_PARENTS: tuple[int, ...] = skeleton.get('smpl24').parents
REQUIRED_KEYS = (
  'v_template',
  'shapedirs',
  'posedirs',
  'J_regressor',
  'weights',
  'kintree_table',
  'f',
)
_NO_PARENT = (2**32 - 1, -1)


@dataclasses.dataclass(frozen=True)
class BodyModel:
  """An SMPL-format body model: arrays are pytree leaves, `parents` and `source` are static.

  Attributes:
    v_template: (V, 3) rest template vertices.
    shapedirs: (V, 3, S) shape blend shapes, S = num_betas.
    posedirs: (V, 3, 9 (J - 1)) pose blend shapes.
    J_regressor: (J, V) rest-joint regressor.
    weights: (V, J) skinning weights (rows sum to 1).
    faces: (F, 3) int32 triangles.
    parents: J parent indices, -1 for the root (joint 0); parents[j] < j.
    source: the file (or description) the model came from, quoted in errors.
  """

  v_template: jax.Array
  shapedirs: jax.Array
  posedirs: jax.Array
  J_regressor: jax.Array
  weights: jax.Array
  faces: jax.Array
  parents: tuple[int, ...]
  source: str = '<arrays>'

  @property
  def num_vertices(self) -> int:
    return int(self.v_template.shape[0])

  @property
  def num_joints(self) -> int:
    return len(self.parents)

  @property
  def num_betas(self) -> int:
    return int(self.shapedirs.shape[-1])

  @property
  def num_faces(self) -> int:
    return int(self.faces.shape[0])


jax.tree_util.register_dataclass(
  BodyModel,
  data_fields=['v_template', 'shapedirs', 'posedirs', 'J_regressor', 'weights', 'faces'],
  meta_fields=['parents', 'source'],
)


class BodyOutput(NamedTuple):
  """Result of `forward` (B batch, V vertices, J joints; the model's unit, metres for SMPL).

  Attributes:
    vertices: (B, V, 3) posed, skinned vertices (+ transl).
    joints: (B, J, 3) posed joints from forward kinematics (+ transl), as smplx's `joints[:, :J]`.
    rest_joints: (B, J, 3) joints regressed from the shaped rest mesh (before posing).
    rotations: (B, J, 3, 3) global (accumulated) joint rotations.
  """

  vertices: jax.Array
  joints: jax.Array
  rest_joints: jax.Array
  rotations: jax.Array


# ---------------------------------------------------------------------------------------------
# Files.


def read_arrays(path: str | os.PathLike) -> dict[str, Any]:
  """Reads every entry of an SMPL-format `.pkl` or `.npz` as numpy arrays (strings kept as is).

  Chumpy objects and scipy sparse matrices become dense numpy arrays; neither library is needed.
  """
  path = pathlib.Path(path)
  if not path.exists():
    raise FileNotFoundError(f'body model file {path} does not exist')
  if path.suffix == '.npz':
    try:
      with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
    except ValueError:  # object arrays (pickled sparse matrices): read them with the shims
      from jaxpose.body.mesh import _read_npz_pickled

      raw = _read_npz_pickled(path)
  else:
    with open(path, 'rb') as fp:
      raw = _pickle.load_pickle(fp)
    if not isinstance(raw, dict):
      raise ValueError(f'{path}: expected a pickled dict of arrays, got {type(raw).__name__}')
  out = {}
  for k, v in raw.items():
    out[k] = v if isinstance(v, str | bytes) else _pickle.to_array(v)
  return out


def _parents_from_kintree(kintree: np.ndarray, source: str) -> tuple[int, ...]:
  ids = [int(i) for i in kintree[1]]
  if ids != list(range(len(ids))):
    # kintree row 1 holds joint ids; SMPL-format files list them in order.
    col = {j: i for i, j in enumerate(ids)}
  else:
    col = {j: j for j in ids}
  parents = []
  for i, p in enumerate(kintree[0].tolist()):
    p = int(p)
    if p in _NO_PARENT or (p < 0):
      parents.append(-1)
    elif p in col:
      parents.append(col[p])
    else:
      raise ValueError(
        f"{source}: key 'kintree_table' column {i} has parent id {p}, not a joint id"
      )
  roots = [i for i, p in enumerate(parents) if p < 0]
  if roots != [0] or any(p >= i for i, p in enumerate(parents) if i > 0):
    raise ValueError(
      f"{source}: key 'kintree_table' must describe a tree rooted at joint 0 with every parent "
      f'listed before its child, got parents {parents}'
    )
  return tuple(parents)


def _expect(source: str, key: str, arr: np.ndarray, expected: tuple, note: str = '') -> None:
  ok = arr.ndim == len(expected) and all(e is None or e == n for e, n in zip(expected, arr.shape))
  if not ok:
    shown = '(' + ', '.join('*' if e is None else str(e) for e in expected) + ')'
    raise ValueError(f'{source}: key {key!r} has shape {tuple(arr.shape)}, expected {shown}{note}')


def model_from_arrays(
  arrays: Mapping[str, Any],
  *,
  source: str = '<arrays>',
  num_betas: int | None = None,
  dtype: Any = jnp.float32,
) -> BodyModel:
  """Validates SMPL-format arrays and builds a `BodyModel`.

  Args:
    arrays: mapping with at least `REQUIRED_KEYS` (extra keys are ignored).
    source: name quoted in error messages (the file path when loading).
    num_betas: shape components to keep (default min(10, S), as smplx); more than the file's S is
      an error.
    dtype: float dtype of the model arrays (faces are int32).

  Raises:
    ValueError: naming the source, the key, the expected and the actual shape or value.
  """
  missing = [k for k in REQUIRED_KEYS if k not in arrays]
  if missing:
    raise ValueError(
      f'{source}: missing key(s) {missing}; an SMPL-format model needs {list(REQUIRED_KEYS)} '
      f'(found {sorted(arrays)})'
    )
  a = {k: np.asarray(arrays[k]) for k in REQUIRED_KEYS}
  _expect(source, 'v_template', a['v_template'], (None, 3))
  nv = a['v_template'].shape[0]
  _expect(source, 'kintree_table', a['kintree_table'], (2, None))
  nj = a['kintree_table'].shape[1]
  _expect(source, 'shapedirs', a['shapedirs'], (nv, 3, None))
  _expect(source, 'posedirs', a['posedirs'], (nv, 3, 9 * (nj - 1)), f' for {nj} joints')
  _expect(source, 'J_regressor', a['J_regressor'], (nj, nv))
  _expect(source, 'weights', a['weights'], (nv, nj))
  _expect(source, 'f', a['f'], (None, 3))
  for k in ('v_template', 'shapedirs', 'posedirs', 'J_regressor', 'weights'):
    if not np.all(np.isfinite(a[k])):
      raise ValueError(f'{source}: key {k!r} has non-finite values')
  f = a['f'].astype(np.int64)
  if f.size and (f.min() < 0 or f.max() >= nv):
    raise ValueError(
      f"{source}: key 'f' has vertex indices in [{f.min()}, {f.max()}], expected [0, {nv - 1}]"
    )
  dev = float(np.max(np.abs(a['weights'].sum(axis=1) - 1.0)))
  if dev > 1e-3:
    raise ValueError(f"{source}: key 'weights' rows must sum to 1 (max deviation {dev:.3g})")
  s = a['shapedirs'].shape[-1]
  if num_betas is None:
    num_betas = min(10, s)
  if not 0 < num_betas <= s:
    raise ValueError(
      f"{source}: key 'shapedirs' has {s} shape components, cannot use num_betas={num_betas}"
    )
  parents = _parents_from_kintree(a['kintree_table'], source)
  return BodyModel(
    v_template=jnp.asarray(a['v_template'], dtype),
    shapedirs=jnp.asarray(a['shapedirs'][..., :num_betas], dtype),
    posedirs=jnp.asarray(a['posedirs'], dtype),
    J_regressor=jnp.asarray(a['J_regressor'], dtype),
    weights=jnp.asarray(a['weights'], dtype),
    faces=jnp.asarray(f, jnp.int32),
    parents=parents,
    source=source,
  )


def load_model(
  path: str | os.PathLike, *, num_betas: int | None = None, dtype: Any = jnp.float32
) -> BodyModel:
  """Loads an SMPL-format `.pkl` (official, chumpy-free) or `.npz` file. See `model_from_arrays`."""
  return model_from_arrays(read_arrays(path), source=str(path), num_betas=num_betas, dtype=dtype)


def save_pkl(path: str | os.PathLike, arrays: Mapping[str, Any]) -> None:
  """Writes the official `.pkl` layout: protocol-2 pickle of a dict, `shapedirs` as a chumpy `Ch`,
  `J_regressor` as a `scipy.sparse.csc_matrix` (loadable by chumpy/scipy users and by `load_model`).
  """
  out = {}
  for k, v in arrays.items():
    if k == 'shapedirs':
      out[k] = _pickle.chumpy_ch(np.asarray(v))
    elif k == 'J_regressor':
      out[k] = _pickle.scipy_csc(np.asarray(v))
    else:
      out[k] = v if isinstance(v, str) else np.asarray(v)
  pathlib.Path(path).write_bytes(_pickle.dumps(out))


def save_npz(path: str | os.PathLike, arrays: Mapping[str, Any]) -> None:
  """Writes the `.npz` layout (dense arrays, as smplx's converted model files)."""
  with open(path, 'wb') as fp:
    np.savez(fp, **{k: np.asarray(v) for k, v in arrays.items()})


# ---------------------------------------------------------------------------------------------
# Input checks (shapes always; values for host numpy inputs).


def check_rotmats(rotmats: ArrayLike, *, name: str = 'rotmats', atol: float = 1e-3) -> None:
  """Raises unless host (numpy) matrices (..., 3, 3) are rotations: R^T R = I and det R = 1.

  Traced or device arrays are not inspected (values are unknown under jit).
  """
  if not isinstance(rotmats, np.ndarray):
    return
  r = rotmats.astype(np.float64)
  if not np.all(np.isfinite(r)):
    raise ValueError(f'{name}: non-finite values in rotation matrices')
  err = np.abs(np.swapaxes(r, -1, -2) @ r - np.eye(3)).max(axis=(-2, -1))
  det = np.linalg.det(r)
  bad = (err > atol) | (np.abs(det - 1.0) > atol)
  if np.any(bad):
    idx = tuple(int(i) for i in np.argwhere(bad)[0])
    raise ValueError(
      f'{name}: matrix at index {idx} is not a rotation (expected R^T R = I and det R = 1 within '
      f'{atol}; got max |R^T R - I| = {err[idx]:.3g}, det = {det[idx]:.4g})'
    )


def to_rotmats(pose: ArrayLike, num_joints: int) -> jax.Array:
  """Pose (B, 3J) or (B, J, 3) axis-angle, or (B, J, 3, 3) matrices -> (B, J, 3, 3) matrices."""
  shape = tuple(np.shape(pose))
  if len(shape) == 4 and shape[1:] == (num_joints, 3, 3):
    check_rotmats(pose, name='pose')
    return jnp.asarray(pose)
  if len(shape) == 3 and shape[1:] == (num_joints, 3):
    return rotation.axis_angle_to_matrix(pose)
  if len(shape) == 2 and shape[1] == 3 * num_joints:
    return rotation.axis_angle_to_matrix(jnp.reshape(jnp.asarray(pose), (-1, num_joints, 3)))
  raise ValueError(
    f'pose: expected axis-angle (B, {3 * num_joints}) or (B, {num_joints}, 3), or rotation '
    f'matrices (B, {num_joints}, 3, 3); got shape {shape}'
  )


def _check_betas(model: BodyModel, betas: ArrayLike, batch: int) -> jax.Array:
  shape = tuple(np.shape(betas))
  if len(shape) not in (1, 2) or shape[-1] != model.num_betas:
    raise ValueError(
      f'betas: expected shape (B, {model.num_betas}) or ({model.num_betas},) for the model '
      f'{model.source} (num_betas={model.num_betas}), got {shape}'
    )
  if len(shape) == 2 and shape[0] not in (1, batch):
    raise ValueError(f'betas: batch {shape[0]} does not match the pose batch {batch}')
  return jnp.broadcast_to(jnp.asarray(betas, model.v_template.dtype), (batch, model.num_betas))


# ---------------------------------------------------------------------------------------------
# The model.


def shape_blend(model: BodyModel, betas: ArrayLike) -> jax.Array:
  """Shaped rest vertices v_template + shapedirs . betas. betas (B, S) -> (B, V, 3)."""
  return model.v_template + jnp.einsum('vcs,bs->bvc', model.shapedirs, jnp.asarray(betas))


def regress(regressor: ArrayLike, vertices: ArrayLike) -> jax.Array:
  """Joints from vertices with a linear regressor. regressor (K, V), vertices (..., V, 3) -> (..., K, 3)."""
  return jnp.einsum('kv,...vc->...kc', jnp.asarray(regressor), jnp.asarray(vertices))


def rest_joints(model: BodyModel, betas: ArrayLike) -> jax.Array:
  """Rest-pose joints of the shaped body (HybrIK's template skeleton). betas (B, S) -> (B, J, 3)."""
  return regress(model.J_regressor, shape_blend(model, betas))


def pose_feature(rotmats: ArrayLike) -> jax.Array:
  """SMPL pose feature vec(R_j - I) over the non-root joints. (B, J, 3, 3) -> (B, 9 (J - 1))."""
  r = jnp.asarray(rotmats)[:, 1:]
  return (r - jnp.eye(3, dtype=r.dtype)).reshape(r.shape[0], -1)


def pose_blend(model: BodyModel, rotmats: ArrayLike) -> jax.Array:
  """Pose-corrective offsets posedirs . pose_feature. (B, J, 3, 3) -> (B, V, 3)."""
  return jnp.einsum('vcp,bp->bvc', model.posedirs, pose_feature(rotmats))


def forward_kinematics(
  rotmats: ArrayLike, joints: ArrayLike, parents: tuple[int, ...]
) -> tuple[jax.Array, jax.Array]:
  """Poses a rest skeleton with local joint rotations.

  Args:
    rotmats: (B, J, 3, 3) local rotations (joint 0: global orientation).
    joints: (B, J, 3) rest joint positions.
    parents: J parent indices, -1 for the root, parents[j] < j.

  Returns:
    (posed_joints (B, J, 3), global_rotations (B, J, 3, 3)).
  """
  r = jnp.asarray(rotmats)
  j = jnp.asarray(joints)
  g_rot, g_pos = [r[:, 0]], [j[:, 0]]
  for i in range(1, len(parents)):
    p = parents[i]
    g_rot.append(g_rot[p] @ r[:, i])
    g_pos.append(g_pos[p] + jnp.einsum('bij,bj->bi', g_rot[p], j[:, i] - j[:, p]))
  return jnp.stack(g_pos, 1), jnp.stack(g_rot, 1)


def skin(
  weights: ArrayLike,
  rotations: ArrayLike,
  posed_joints: ArrayLike,
  rest_joints_: ArrayLike,
  vertices: ArrayLike,
) -> jax.Array:
  """Linear blend skinning.

  Each joint's rigid map is x -> R^G_j (x - J_rest_j) + J_posed_j; a vertex moves by the
  weights-blend of those maps.

  Args:
    weights: (V, J) skinning weights.
    rotations: (B, J, 3, 3) global joint rotations.
    posed_joints: (B, J, 3) posed joint positions.
    rest_joints_: (B, J, 3) rest joint positions.
    vertices: (B, V, 3) rest-pose vertices (with blend shapes).

  Returns:
    (B, V, 3) skinned vertices.
  """
  rot = jnp.asarray(rotations)
  trans = jnp.asarray(posed_joints) - jnp.einsum('bjik,bjk->bji', rot, jnp.asarray(rest_joints_))
  w = jnp.asarray(weights)
  blend_rot = jnp.einsum('vj,bjik->bvik', w, rot)
  blend_trans = jnp.einsum('vj,bji->bvi', w, trans)
  return jnp.einsum('bvik,bvk->bvi', blend_rot, jnp.asarray(vertices)) + blend_trans


def forward(
  model: BodyModel,
  pose: ArrayLike,
  betas: ArrayLike | None = None,
  transl: ArrayLike | None = None,
) -> BodyOutput:
  """Runs the body model (pure: jit, vmap and grad friendly; shape checks run at trace time).

  Args:
    model: the body model.
    pose: axis-angle (B, 3J) / (B, J, 3) radians, or local rotation matrices (B, J, 3, 3); joint 0
      is the global orientation. Host numpy matrices are checked to be rotations.
    betas: (B, S) or (S,) shape coefficients, S = model.num_betas exactly; None = zeros.
    transl: optional (B, 3) or (3,) global translation added to vertices and joints.

  Returns:
    BodyOutput(vertices (B, V, 3), joints (B, J, 3), rest_joints (B, J, 3), rotations (B, J, 3, 3)).
  """
  rotmats = to_rotmats(pose, model.num_joints).astype(model.v_template.dtype)
  batch = rotmats.shape[0]
  if betas is None:
    betas = jnp.zeros((batch, model.num_betas), model.v_template.dtype)
  betas = _check_betas(model, betas, batch)
  v_shaped = shape_blend(model, betas)
  j_rest = regress(model.J_regressor, v_shaped)
  v_posed = v_shaped + pose_blend(model, rotmats)
  j_posed, g_rot = forward_kinematics(rotmats, j_rest, model.parents)
  verts = skin(model.weights, g_rot, j_posed, j_rest, v_posed)
  if transl is not None:
    t = jnp.asarray(transl, verts.dtype)
    if t.shape not in ((3,), (batch, 3), (1, 3)):
      raise ValueError(f'transl: expected shape (B, 3) or (3,) with B = {batch}, got {t.shape}')
    t = jnp.broadcast_to(t, (batch, 3))[:, None, :]
    verts, j_posed = verts + t, j_posed + t
  return BodyOutput(verts, j_posed, j_rest, g_rot)
