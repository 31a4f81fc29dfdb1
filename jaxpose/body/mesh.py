"""Triangle-mesh toolkit: topology, normals, down/up-sampling matrices and PMCE's mesh losses.

Shapes: V vertices, F faces, E edges, B batch. Vertices are (..., V, 3) float (metres for SMPL-format
bodies); faces are (F, 3) integer vertex indices, counter-clockwise seen from outside.

Down/up-sampling (PMCE's 6890 -> 1723 -> 431, from GraphCMR, which took it from COMA:
Ranjan et al., "Generating 3D faces using Convolutional Mesh Autoencoders", ECCV 2018, arXiv
1807.10267). `mesh_sampling` recomputes such matrices for any closed mesh with the same recipe:
  1. Quadric edge collapse (Garland & Heckbert 1997) with the surviving vertex kept in place (no new
     positions), so the coarse vertices are a subset of the fine ones; each collapse keeps the mesh a
     closed 2-manifold of the same genus (link condition, no normal flips).
  2. D (n_coarse, n_fine) selects the surviving vertices (one 1 per row).
  3. U (n_fine, n_coarse) puts every fine vertex at its closest point on the coarse surface
     (barycentric weights of that triangle; a surviving vertex gets weight 1 on itself).
  The level sizes are ceil(n / factor), which gives 6890 -> 1723 -> 431 for factor 4. The official
  `mesh_downsampling.npz` (A, U, D object arrays of scipy sparse matrices) is read by
  `load_mesh_sampling` without scipy. Matrices are `SparseRows`: a fixed number of (index, weight)
  pairs per output row, applied with one gather (jit, vmap and grad friendly).

Losses (PMCE `lib/core/loss.py`, github.com/kasvii/PMCE @ 0f4075a, inherited from Pose2Mesh):
  coord_loss          mean |pred*valid - gt*valid| (masked entries count as zeros in the mean)
  normal_vector_loss  mean |cos| between each predicted unit face edge and the unit GT face normal
  edge_length_loss    mean | |e_pred| - |e_gt| | over the 3 edges of every face
Each returns one value per sample, (B,), the mean over that sample's elements; the official scalar
is the mean over the batch (equal element counts). Edge vectors are normalised as torch's
`F.normalize` (divide by max(|e|, 1e-12)); the gradient of a zero-length edge is 0, not NaN.
"""

from __future__ import annotations

import dataclasses
import heapq
import io
import math
import os
import zipfile
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxpose.body import _pickle
from jaxpose.geometry._array import namespace

# ---------------------------------------------------------------------------------------------
# Topology (host side, numpy).


def edges(faces: ArrayLike) -> np.ndarray:
  """Unique undirected edges (E, 2), each sorted (i < j), rows sorted lexicographically."""
  f = np.asarray(faces, np.int64)
  e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
  return np.unique(np.sort(e, axis=1), axis=0)


def neighbours(faces: ArrayLike, num_vertices: int) -> list[np.ndarray]:
  """One-ring neighbour indices of every vertex (a list of V sorted int arrays)."""
  e = edges(faces)
  both = np.concatenate([e, e[:, ::-1]])
  both = both[np.lexsort((both[:, 1], both[:, 0]))]
  splits = np.searchsorted(both[:, 0], np.arange(1, num_vertices))
  return np.split(both[:, 1], splits)


def topology(faces: ArrayLike, num_vertices: int) -> dict:
  """Topological summary of a triangle mesh.

  Returns:
    dict with `num_vertices`, `num_faces`, `num_edges`, `euler` (V - E + F), `components`
    (connected components over edges, isolated vertices included), `closed` (every edge in exactly
    two faces), `edge_manifold` (no edge in more than two faces), `oriented` (every edge used once
    in each direction), `vertex_manifold` (the faces around every vertex form one fan),
    `degenerate_faces` (faces repeating a vertex) and `genus` (for a closed orientable connected
    mesh, (2 - euler) / 2, else None).
  """
  f = np.asarray(faces, np.int64)
  directed = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
  und = np.sort(directed, axis=1)
  _, inv, counts = np.unique(und, axis=0, return_inverse=True, return_counts=True)
  d_unique, d_counts = np.unique(directed, axis=0, return_counts=True)
  num_edges = len(counts)
  closed = bool(np.all(counts == 2))
  oriented = bool(closed and np.all(d_counts == 1) and len(d_unique) == 2 * num_edges)
  degenerate = int(np.sum((f[:, 0] == f[:, 1]) | (f[:, 1] == f[:, 2]) | (f[:, 2] == f[:, 0])))
  # Components by union-find over the edges.
  parent = np.arange(num_vertices)

  def find(i: int) -> int:
    while parent[i] != i:
      parent[i] = parent[parent[i]]
      i = parent[i]
    return i

  for a, b in np.unique(und, axis=0):
    ra, rb = find(a), find(b)
    if ra != rb:
      parent[max(ra, rb)] = min(ra, rb)
  components = len({find(i) for i in range(num_vertices)})
  vertex_manifold = closed and _fans_are_single(f, num_vertices)
  euler = num_vertices - num_edges + len(f)
  genus = (2 - euler) // 2 if (closed and oriented and components == 1) else None
  return {
    'num_vertices': num_vertices,
    'num_faces': len(f),
    'num_edges': num_edges,
    'euler': euler,
    'components': components,
    'closed': closed,
    'edge_manifold': bool(np.all(counts <= 2)),
    'oriented': oriented,
    'vertex_manifold': vertex_manifold,
    'degenerate_faces': degenerate,
    'genus': genus,
  }


def _fans_are_single(f: np.ndarray, num_vertices: int) -> bool:
  # Around a manifold vertex the opposite edges of its faces form one closed cycle.
  opp = {}
  for a, b, c in f.tolist():
    opp.setdefault(a, []).append((b, c))
    opp.setdefault(b, []).append((c, a))
    opp.setdefault(c, []).append((a, b))
  for v in range(num_vertices):
    ring = opp.get(v)
    if not ring:
      continue
    nxt = dict(ring)
    if len(nxt) != len(ring):
      return False
    start = ring[0][0]
    cur, steps = start, 0
    while True:
      cur = nxt.get(cur)
      steps += 1
      if cur is None or steps > len(ring):
        return False
      if cur == start:
        break
    if steps != len(ring):
      return False
  return True


# ---------------------------------------------------------------------------------------------
# Normals (numpy in -> numpy out; jax in -> jnp).


def _safe_norm(x, axis: int = -1, keepdims: bool = False):
  xp = namespace(x)
  sq = xp.sum(x * x, axis=axis, keepdims=keepdims)
  pos = sq > 0
  # 0 (with gradient 0) at the zero vector; NaN stays NaN.
  return xp.where(pos, xp.sqrt(xp.where(pos, sq, 1.0)), sq)


def _normalize(x, eps: float = 1e-12):
  """x / max(|x|, eps) along the last axis (torch F.normalize), gradient 0 at x = 0."""
  xp = namespace(x)
  return x / xp.maximum(_safe_norm(x, keepdims=True), eps)


def face_normals(vertices: ArrayLike, faces: ArrayLike, *, normalize: bool = True):
  """Face normals (..., F, 3): unit, or (normalize=False) with length = 2 x face area."""
  xp = namespace(vertices)
  v = xp.asarray(vertices)
  f = np.asarray(faces)
  a, b, c = v[..., f[:, 0], :], v[..., f[:, 1], :], v[..., f[:, 2], :]
  n = xp.cross(b - a, c - a, axis=-1)
  return _normalize(n) if normalize else n


def vertex_normals(vertices: ArrayLike, faces: ArrayLike):
  """Unit vertex normals (..., V, 3): the area-weighted sum of the incident face normals."""
  xp = namespace(vertices)
  v = xp.asarray(vertices)
  f = np.asarray(faces)
  n = face_normals(v, f, normalize=False)
  out = xp.zeros_like(v)
  if xp is np:
    for k in range(3):
      np.add.at(np.moveaxis(out, -2, 0), f[:, k], np.moveaxis(n, -2, 0))
  else:
    for k in range(3):
      out = out.at[..., f[:, k], :].add(n)
  return _normalize(out)


# ---------------------------------------------------------------------------------------------
# Sparse row matrices.


@dataclasses.dataclass(frozen=True)
class SparseRows:
  """A sparse (n_out, n_in) matrix stored as K (index, weight) pairs per row (zero-padded).

  Attributes:
    indices: (n_out, K) int32 column indices.
    weights: (n_out, K) float32 weights (0 for padding).
    n_in: number of columns (static).
  """

  indices: jax.Array
  weights: jax.Array
  n_in: int

  @property
  def shape(self) -> tuple[int, int]:
    return (int(self.indices.shape[0]), int(self.n_in))

  def __call__(self, x: ArrayLike):
    """Applies the matrix to (..., n_in, C) -> (..., n_out, C). numpy in -> numpy out."""
    xp = namespace(x, self.indices, self.weights)
    x = xp.asarray(x)
    if x.shape[-2] != self.n_in:
      raise ValueError(f'SparseRows expects (..., {self.n_in}, C) input, got {tuple(x.shape)}')
    g = x[..., xp.asarray(self.indices), :]  # (..., n_out, K, C)
    return xp.sum(g * xp.asarray(self.weights, dtype=x.dtype)[..., None], axis=-2)

  def to_dense(self) -> np.ndarray:
    """(n_out, n_in) float64 numpy array."""
    out = np.zeros(self.shape)
    rows = np.repeat(np.arange(self.shape[0]), self.indices.shape[1])
    np.add.at(out, (rows, np.asarray(self.indices).ravel()), np.asarray(self.weights).ravel())
    return out

  @classmethod
  def from_dense(cls, m: ArrayLike, *, dtype=np.float32) -> SparseRows:
    """From a dense (n_out, n_in) array; K = the largest number of nonzeros in a row (at least 1)."""
    m = np.asarray(m)
    nnz = (m != 0).sum(axis=1)
    k = max(int(nnz.max(initial=0)), 1)
    order = np.argsort(m == 0, axis=1, kind='stable')[:, :k]  # nonzero columns first, in order
    w = np.take_along_axis(m, order, axis=1)
    idx = np.where(w != 0, order, 0)
    return cls(idx.astype(np.int32), w.astype(dtype), int(m.shape[1]))


jax.tree_util.register_dataclass(
  SparseRows, data_fields=['indices', 'weights'], meta_fields=['n_in']
)


# ---------------------------------------------------------------------------------------------
# Quadric edge collapse.


def _plane_quadrics(pos: np.ndarray, faces: np.ndarray) -> np.ndarray:
  n = np.cross(pos[faces[:, 1]] - pos[faces[:, 0]], pos[faces[:, 2]] - pos[faces[:, 0]])
  area2 = np.linalg.norm(n, axis=1)
  unit = n / np.maximum(area2, 1e-300)[:, None]
  plane = np.concatenate([unit, -np.sum(unit * pos[faces[:, 0]], axis=1, keepdims=True)], axis=1)
  k = plane[:, :, None] * plane[:, None, :] * (0.5 * area2)[:, None, None]  # area-weighted
  q = np.zeros((len(pos), 4, 4))
  for c in range(3):
    np.add.at(q, faces[:, c], k)
  return q


def decimate(
  vertices: ArrayLike,
  faces: ArrayLike,
  num_vertices: int,
  *,
  length_weight: float = 0.0,
  max_valence: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
  """Quadric edge collapse of a closed manifold mesh down to exactly `num_vertices` vertices.

  Every step removes one vertex u by moving it onto a neighbour v (v stays where it is), choosing
  the cheapest (u, v) by the summed plane quadrics of u and v evaluated at v (Garland & Heckbert,
  area-weighted), plus `length_weight * |u - v|^2` (0 is plain QEM; > 0 favours even edge lengths).
  A collapse is skipped when it would break the 2-manifold (link condition), flip or collapse a
  face, or make a vertex valence exceed `max_valence`. Deterministic (ties broken by index).

  Args:
    vertices: (V, 3) positions.
    faces: (F, 3) closed oriented manifold triangles.
    num_vertices: target vertex count (4 <= num_vertices <= V).
    length_weight: weight of the squared edge length in the collapse cost.
    max_valence: optional cap on the valence of the surviving vertex.

  Returns:
    (kept, new_faces): kept (num_vertices,) increasing indices of the surviving input vertices;
    new_faces (2 * num_vertices - 4 + 4 * genus, 3) indexing into `kept` (orientation preserved).

  Raises:
    ValueError: when the target is out of range or no valid collapse is left.
  """
  pos = np.asarray(vertices, np.float64)
  f = np.array(faces, np.int64)
  nv = len(pos)
  if not 4 <= num_vertices <= nv:
    raise ValueError(f'decimate: num_vertices must be in [4, {nv}], got {num_vertices}')
  q = _plane_quadrics(pos, f)
  vf = [set() for _ in range(nv)]
  for fi, (a, b, c) in enumerate(f.tolist()):
    vf[a].add(fi)
    vf[b].add(fi)
    vf[c].add(fi)
  face_list = f.tolist()
  alive = np.ones(nv, bool)
  stamp = [0] * nv
  heap: list = []
  hom = np.concatenate([pos, np.ones((nv, 1))], axis=1)

  def ring(u: int) -> set:
    out = set()
    for fi in vf[u]:
      out.update(face_list[fi])
    out.discard(u)
    return out

  def push(u: int, v: int) -> None:
    h = hom[v]
    d = pos[u] - pos[v]
    cost = float(h @ (q[u] + q[v]) @ h) + length_weight * float(d @ d)
    heapq.heappush(heap, (cost, u, v, stamp[u], stamp[v]))

  def fill() -> None:
    heap.clear()
    for fi in {fi for v in np.nonzero(alive)[0] for fi in vf[v]}:
      a, b, c = face_list[fi]
      for x, y in ((a, b), (b, c), (c, a)):
        push(x, y)
        push(y, x)

  def try_collapse(u: int, v: int) -> bool:
    nu, nv_ = ring(u), ring(v)
    if v not in nu or len(nu & nv_) != 2:
      return False
    if max_valence is not None and len(nu | nv_) - 2 > max_valence:
      return False
    shared = [fi for fi in vf[u] if v in face_list[fi]]
    moving = [fi for fi in vf[u] if v not in face_list[fi]]
    tri = np.asarray([face_list[fi] for fi in moving])
    old = pos[tri]
    new = np.where((tri == u)[..., None], pos[v], old)
    n_old = np.cross(old[:, 1] - old[:, 0], old[:, 2] - old[:, 0])
    n_new = np.cross(new[:, 1] - new[:, 0], new[:, 2] - new[:, 0])
    len_old = np.linalg.norm(n_old, axis=1)
    len_new = np.linalg.norm(n_new, axis=1)
    if np.any(len_new <= 1e-12 * np.maximum(len_old, 1e-300)) or np.any(
      np.sum(n_old * n_new, axis=1) <= 0.05 * len_old * len_new
    ):
      return False
    for fi in shared:
      for w in face_list[fi]:
        vf[w].discard(fi)
    for fi in moving:
      face_list[fi] = [v if w == u else w for w in face_list[fi]]
      vf[v].add(fi)
    vf[u] = set()
    alive[u] = False
    q[v] += q[u]
    stamp[v] += 1
    for w in ring(v):
      push(v, w)
      push(w, v)
    return True

  count = nv
  fill()
  progressed = False
  while count > num_vertices:
    if not heap:
      if not progressed:
        raise ValueError(f'decimate: no valid edge collapse left at {count} vertices')
      progressed = False
      fill()  # validity of skipped candidates may have changed since they were popped
      continue
    _, u, v, su, sv = heapq.heappop(heap)
    if not (alive[u] and alive[v]) or stamp[u] != su or stamp[v] != sv:
      continue
    if try_collapse(u, v):
      count -= 1
      progressed = True
  kept = np.nonzero(alive)[0]
  remap = -np.ones(nv, np.int64)
  remap[kept] = np.arange(len(kept))
  live_faces = sorted({fi for v in kept for fi in vf[v]})
  new_faces = remap[np.asarray([face_list[fi] for fi in live_faces], np.int64)]
  return kept, new_faces


# ---------------------------------------------------------------------------------------------
# Closest points and sampling matrices.


def _closest_on_segments(p, a, b):
  ab = b - a
  t = np.clip(np.sum((p - a) * ab, -1) / np.maximum(np.sum(ab * ab, -1), 1e-300), 0.0, 1.0)
  d = p - (a + t[..., None] * ab)
  return np.sum(d * d, -1), t


def _closest_on_triangles(p, a, b, c):
  """Closest points of p (N, 3) on triangles (N, 3) x 3: (squared distance, barycentric (N, 3))."""
  n = np.cross(b - a, c - a)
  nn = np.maximum(np.sum(n * n, -1), 1e-300)
  # Barycentrics of the projection onto the plane.
  w_a = np.sum(np.cross(b - p, c - p) * n, -1) / nn
  w_b = np.sum(np.cross(c - p, a - p) * n, -1) / nn
  w_c = 1.0 - w_a - w_b
  inside = (w_a >= 0) & (w_b >= 0) & (w_c >= 0)
  plane_d = np.sum((p - a) * n, -1) ** 2 / nn
  d_ab, t_ab = _closest_on_segments(p, a, b)
  d_bc, t_bc = _closest_on_segments(p, b, c)
  d_ca, t_ca = _closest_on_segments(p, c, a)
  cand = np.stack([np.where(inside, plane_d, np.inf), d_ab, d_bc, d_ca], -1)
  kind = np.argmin(cand, -1)
  zero = np.zeros_like(w_a)
  w = np.stack(
    [
      np.select([kind == 0, kind == 1, kind == 3], [w_a, 1 - t_ab, t_ca], zero),
      np.select([kind == 0, kind == 1, kind == 2], [w_b, t_ab, 1 - t_bc], zero),
      np.select([kind == 0, kind == 2, kind == 3], [w_c, t_bc, 1 - t_ca], zero),
    ],
    -1,
  )
  return np.take_along_axis(cand, kind[:, None], -1)[:, 0], w


def closest_point_barycentric(
  points: ArrayLike, vertices: ArrayLike, faces: ArrayLike, *, chunk: int = 512
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Closest point on a triangle mesh for every query point (exact).

  Faces are pruned with a bounding-sphere test against the distance to the nearest mesh vertex (an
  upper bound of the answer), then every remaining (point, face) pair is solved exactly; ties go
  to the lowest face index.

  Args:
    points: (P, 3) queries.
    vertices: (V, 3) mesh vertices.
    faces: (F, 3) triangles.
    chunk: queries per block (memory is about chunk x F floats).

  Returns:
    (face_index (P,), barycentric (P, 3) weights of that face's corners, squared distance (P,)).
  """
  pts = np.asarray(points, np.float64)
  pos = np.asarray(vertices, np.float64)
  f = np.asarray(faces, np.int64)
  tri = pos[f]  # (F, 3, 3)
  centre = tri.mean(1)
  radius = np.linalg.norm(tri - centre[:, None], axis=-1).max(1)
  out_f = np.zeros(len(pts), np.int64)
  out_w = np.zeros((len(pts), 3))
  out_d = np.zeros(len(pts))
  for s in range(0, len(pts), chunk):
    p = pts[s : s + chunk]
    bound = np.sqrt(np.min(np.sum((p[:, None] - pos[None]) ** 2, -1), axis=1))  # nearest vertex
    reach = np.sqrt(np.sum((p[:, None] - centre[None]) ** 2, -1)) - radius[None]
    qi, fi = np.nonzero(reach <= bound[:, None] * (1 + 1e-9) + 1e-12)  # sorted by (qi, fi)
    d2, w = _closest_on_triangles(p[qi], tri[fi, 0], tri[fi, 1], tri[fi, 2])
    order = np.lexsort((fi, d2, qi))  # per query: smallest distance, then lowest face
    first = order[np.unique(qi[order], return_index=True)[1]]
    out_f[s : s + chunk] = fi[first]
    out_w[s : s + chunk] = w[first]
    out_d[s : s + chunk] = d2[first]
  return out_f, out_w, out_d


@dataclasses.dataclass(frozen=True)
class MeshSampling:
  """Down/up-sampling between mesh levels 0 (finest) .. L.

  Attributes:
    down: L matrices; down[i] maps level i (n_i, C) -> level i+1 (n_{i+1}, C).
    up: L matrices; up[i] maps level i+1 -> level i.
    faces: L+1 face arrays (F_i, 3) (None where unknown, e.g. the official file has none).
    vertices: L+1 template vertex arrays (n_i, 3) (None where unknown).
  """

  down: tuple[SparseRows, ...]
  up: tuple[SparseRows, ...]
  faces: tuple[np.ndarray | None, ...]
  vertices: tuple[np.ndarray | None, ...]

  @property
  def sizes(self) -> tuple[int, ...]:
    return (self.down[0].n_in,) + tuple(d.shape[0] for d in self.down)

  def downsample(self, x: ArrayLike, start: int = 0, stop: int | None = None):
    """Level `start` (..., n_start, C) -> level `stop` (default the coarsest)."""
    stop = len(self.down) if stop is None else stop
    for i in range(start, stop):
      x = self.down[i](x)
    return x

  def upsample(self, x: ArrayLike, start: int | None = None, stop: int = 0):
    """Level `start` (default the coarsest) (..., n_start, C) -> level `stop` (default 0)."""
    start = len(self.up) if start is None else start
    for i in reversed(range(stop, start)):
      x = self.up[i](x)
    return x


def mesh_sampling(
  vertices: ArrayLike, faces: ArrayLike, factors: Sequence[int] = (4, 4), **decimate_kwargs
) -> MeshSampling:
  """COMA-style sampling matrices for a closed manifold mesh (see the module docstring).

  Args:
    vertices: (V, 3) template vertices.
    faces: (F, 3) triangles.
    factors: per-level reduction; level i+1 has ceil(n_i / factor_i) vertices.
    **decimate_kwargs: passed to `decimate` (plain QEM by default, as COMA).

  Returns:
    MeshSampling with the template and faces of every level.
  """
  pos = np.asarray(vertices, np.float64)
  cur_faces = np.asarray(faces, np.int64)
  verts, fcs, down, up = [pos], [cur_faces], [], []
  for factor in factors:
    n = len(verts[-1])
    target = math.ceil(n / factor)
    kept, new_faces = decimate(verts[-1], fcs[-1], target, **decimate_kwargs)
    d = np.zeros((target, n), np.float32)
    d[np.arange(target), kept] = 1.0
    coarse = verts[-1][kept]
    fi, w, _ = closest_point_barycentric(verts[-1], coarse, new_faces)
    u_idx = new_faces[fi].astype(np.int32)
    # A surviving vertex maps exactly onto itself.
    self_idx = np.full(n, -1)
    self_idx[kept] = np.arange(target)
    is_kept = self_idx >= 0
    u_idx[is_kept] = np.stack([self_idx[is_kept]] * 3, -1)
    w[is_kept] = [1.0, 0.0, 0.0]
    up.append(SparseRows(u_idx, w.astype(np.float32), target))
    down.append(SparseRows.from_dense(d))
    verts.append(coarse)
    fcs.append(new_faces)
  return MeshSampling(tuple(down), tuple(up), tuple(fcs), tuple(verts))


def _read_npz_pickled(path: str | os.PathLike) -> dict:
  """Reads an .npz whose members may be pickled object arrays, with the chumpy/scipy shims."""
  out = {}
  with zipfile.ZipFile(path) as zf:
    for name in zf.namelist():
      with zf.open(name) as raw:
        fp = io.BytesIO(raw.read())
      version = np.lib.format.read_magic(fp)
      shape, fortran, dtype = (
        np.lib.format.read_array_header_1_0(fp)
        if version == (1, 0)
        else np.lib.format.read_array_header_2_0(fp)
      )
      key = name[:-4] if name.endswith('.npy') else name
      if dtype.hasobject:
        out[key] = _pickle.load_pickle(fp)
      else:
        data = np.frombuffer(fp.read(), dtype=dtype)
        out[key] = data.reshape(shape, order='F' if fortran else 'C')
  return out


def load_mesh_sampling(path: str | os.PathLike) -> MeshSampling:
  """Reads GraphCMR's `mesh_downsampling.npz` layout (as PMCE uses it) without scipy.

  The file has object arrays `D` (L down matrices), `U` (L up matrices) and `A` (L+1 adjacency
  matrices, unused here), each a pickled scipy sparse matrix.

  Raises:
    ValueError: naming the file and key when a key is missing or the sizes do not chain.
  """
  data = _read_npz_pickled(path)
  for key in ('D', 'U'):
    if key not in data:
      raise ValueError(f'{path}: missing key {key!r} (found {sorted(data)})')
  down = [SparseRows.from_dense(_pickle.to_array(m)) for m in np.asarray(data['D']).ravel()]
  up = [SparseRows.from_dense(_pickle.to_array(m)) for m in np.asarray(data['U']).ravel()]
  if len(down) != len(up):
    raise ValueError(f'{path}: {len(down)} D matrices but {len(up)} U matrices')
  for i, (d, u) in enumerate(zip(down, up)):
    if u.shape != (d.shape[1], d.shape[0]):
      raise ValueError(f"{path}: key 'U'[{i}] has shape {u.shape}, expected {d.shape[::-1]}")
    if i and d.shape[1] != down[i - 1].shape[0]:
      raise ValueError(
        f"{path}: key 'D'[{i}] has {d.shape[1]} columns, expected {down[i - 1].shape[0]}"
      )
  n = len(down) + 1
  return MeshSampling(tuple(down), tuple(up), (None,) * n, (None,) * n)


def write_mesh_sampling(path: str | os.PathLike, sampling: MeshSampling) -> None:
  """Writes the official `mesh_downsampling.npz` layout: object arrays A, D, U of csc matrices.

  A[i] is the vertex adjacency (0/1, symmetric) of level i; it needs the level's faces.
  """
  if any(f is None for f in sampling.faces):
    raise ValueError('write_mesh_sampling needs the faces of every level to write A')
  adj = []
  for f, n in zip(sampling.faces, sampling.sizes):
    e = edges(f)
    a = np.zeros((n, n), np.float32)
    a[e[:, 0], e[:, 1]] = 1.0
    a[e[:, 1], e[:, 0]] = 1.0
    adj.append(a)
  members = {
    'A': [_pickle.scipy_csc(a) for a in adj],
    'D': [_pickle.scipy_csc(d.to_dense().astype(np.float32)) for d in sampling.down],
    'U': [_pickle.scipy_csc(u.to_dense().astype(np.float32)) for u in sampling.up],
  }
  with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as zf:
    for key, objs in members.items():
      arr = np.empty(len(objs), dtype=object)
      arr[:] = objs
      buf = io.BytesIO()
      np.lib.format.write_array_header_1_0(
        buf, {'descr': '|O', 'fortran_order': False, 'shape': (len(objs),)}
      )
      buf.write(_pickle.dumps(arr))
      zf.writestr(f'{key}.npy', buf.getvalue())


# ---------------------------------------------------------------------------------------------
# PMCE losses (per sample).


def coord_loss(pred: ArrayLike, gt: ArrayLike, valid: ArrayLike | None = None) -> jax.Array:
  """PMCE CoordLoss: L1 between pred*valid and gt*valid, mean over all elements of a sample.

  Args:
    pred: (B, N, C) predicted coordinates (vertices in metres, or joints in mm).
    gt: (B, N, C) targets.
    valid: optional (B, N, 1) or broadcastable mask; masked entries contribute 0 (and still count
      in the mean, as the official `nn.L1Loss(reduction='mean')` on the masked tensors).

  Returns:
    (B,) loss per sample.
  """
  pred, gt = jnp.asarray(pred), jnp.asarray(gt)
  if valid is not None:
    valid = jnp.asarray(valid, pred.dtype)
    pred, gt = pred * valid, gt * valid
  return jnp.mean(jnp.abs(pred - gt), axis=tuple(range(1, pred.ndim)))


def _edge_vectors(v: jax.Array, faces: np.ndarray) -> tuple[jax.Array, jax.Array, jax.Array]:
  a, b, c = v[:, faces[:, 0]], v[:, faces[:, 1]], v[:, faces[:, 2]]
  return b - a, c - a, c - b


def normal_vector_loss(pred: ArrayLike, gt: ArrayLike, faces: ArrayLike) -> jax.Array:
  """PMCE NormalVectorLoss: mean |cos| between predicted unit edges and the unit GT face normal.

  Args:
    pred: (B, V, 3) predicted vertices.
    gt: (B, V, 3) target vertices.
    faces: (F, 3) triangles.

  Returns:
    (B,) mean over the F faces x 3 edges (e01, e02, e12) of each sample.
  """
  faces = np.asarray(faces)
  pred, gt = jnp.asarray(pred), jnp.asarray(gt)
  e_pred = [_normalize(e) for e in _edge_vectors(pred, faces)]
  g1, g2, _ = _edge_vectors(gt, faces)
  normal = _normalize(jnp.cross(_normalize(g1), _normalize(g2), axis=-1))
  cos = jnp.stack([jnp.abs(jnp.sum(e * normal, -1)) for e in e_pred], -1)  # (B, F, 3)
  return jnp.mean(cos, axis=(1, 2))


def edge_length_loss(pred: ArrayLike, gt: ArrayLike, faces: ArrayLike) -> jax.Array:
  """PMCE EdgeLengthLoss: mean | |e_pred| - |e_gt| | over the edges (01, 02, 12) of every face.

  Args:
    pred: (B, V, 3) predicted vertices.
    gt: (B, V, 3) target vertices.
    faces: (F, 3) triangles.

  Returns:
    (B,) loss per sample, in the unit of the vertices.
  """
  faces = np.asarray(faces)
  pred, gt = jnp.asarray(pred), jnp.asarray(gt)
  pairs = ((0, 1), (0, 2), (1, 2))
  d_pred = jnp.stack(
    [_safe_norm(pred[:, faces[:, i]] - pred[:, faces[:, j]]) for i, j in pairs], -1
  )
  d_gt = jnp.stack([_safe_norm(gt[:, faces[:, i]] - gt[:, faces[:, j]]) for i, j in pairs], -1)
  return jnp.mean(jnp.abs(d_pred - d_gt), axis=(1, 2))
