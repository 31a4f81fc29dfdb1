"""Implicit-surface helpers for the synthetic body: SDF primitives and marching tetrahedra.

Host-side numpy only. `marching_tetrahedra` extracts the zero level set of a sampled scalar field
(negative inside) on a regular grid split into six tetrahedra per cell (the Kuhn/Freudenthal split
along the main diagonal, conforming across cells). The level set of a piecewise-linear field with no
zero at a grid point is a closed 2-manifold wherever it stays inside the grid, so the output is a
closed, consistently oriented (outward) triangle mesh with one vertex per crossed grid edge.
"""

from __future__ import annotations

import itertools

import numpy as np


def smooth_min(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
  """Polynomial smooth minimum (blend radius k, in the unit of the distances)."""
  h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
  return b + (a - b) * h - k * h * (1.0 - h)


def round_cone(p: np.ndarray, a, b, ra: float, rb: float) -> np.ndarray:
  """Signed distance to a tapered capsule from a (radius ra) to b (radius rb). p: (..., 3)."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  ba = b - a
  length = np.linalg.norm(ba)
  axis = ba / length
  pa = p - a
  t = pa @ axis
  radial = np.linalg.norm(pa - t[..., None] * axis, axis=-1)
  # Slope-corrected projection of the point onto the cone's side line.
  s = (ra - rb) / length
  c = np.sqrt(max(1.0 - s * s, 1e-12))
  u = t + radial * s / c
  along = np.clip(u / length, 0.0, 1.0)
  side = (radial - (ra + (rb - ra) * along)) * c
  inside_caps = np.minimum(np.linalg.norm(pa, axis=-1) - ra, np.linalg.norm(p - b, axis=-1) - rb)
  return np.where((u > 0) & (u < length), side, inside_caps)


def ellipsoid(p: np.ndarray, centre, radii) -> np.ndarray:
  """Approximate signed distance to an axis-aligned ellipsoid (exact on the surface, monotone)."""
  r = np.asarray(radii, np.float64)
  q = (p - np.asarray(centre, np.float64)) / r
  return (np.linalg.norm(q, axis=-1) - 1.0) * r.min()


# The six tetrahedra of a unit cell: corner k of tetra t is the binary offset (x, y, z).
def _kuhn_tetrahedra() -> np.ndarray:
  tets = []
  for perm in itertools.permutations(range(3)):
    c = np.zeros(3, np.int64)
    corners = [c.copy()]
    for axis in perm:
      c[axis] = 1
      corners.append(c.copy())
    tets.append(corners)
  return np.asarray(tets)  # (6, 4, 3)


_TETS = _kuhn_tetrahedra()


def marching_tetrahedra(
  values: np.ndarray, origin, spacing: float
) -> tuple[np.ndarray, np.ndarray]:
  """Zero level set of a grid field (negative inside) as a closed oriented triangle mesh.

  Args:
    values: (nx, ny, nz) field samples at origin + spacing * (i, j, k); exact zeros are nudged to
      +1e-12 so the surface never passes through a sample.
    origin: (3,) position of sample (0, 0, 0).
    spacing: grid step.

  Returns:
    (vertices (V, 3) float64, faces (F, 3) int64), faces counter-clockwise seen from outside
    (positive side). Vertices are ordered by grid edge key, so the output is deterministic.
  """
  f = np.where(values == 0.0, 1e-12, values).astype(np.float64)
  shape = np.asarray(f.shape)
  cells = np.stack(np.meshgrid(*[np.arange(n - 1) for n in shape], indexing='ij'), -1).reshape(
    -1, 3
  )

  def flat(ijk):
    return (ijk[..., 0] * shape[1] + ijk[..., 1]) * shape[2] + ijk[..., 2]

  tri_keys, tri_sides = [], []
  fv = f.ravel()
  for tet in _TETS:
    corners = cells[:, None, :] + tet[None]  # (C, 4, 3)
    ids = flat(corners)  # (C, 4)
    inside = fv[ids] < 0
    code = inside @ (1 << np.arange(4))
    for case in range(1, 15):
      sel = code == case
      if not np.any(sel):
        continue
      neg = [k for k in range(4) if case >> k & 1]
      pos = [k for k in range(4) if not case >> k & 1]
      cid = ids[sel]
      if len(neg) == 1 or len(pos) == 1:
        lone, others = (neg[0], pos) if len(neg) == 1 else (pos[0], neg)
        polys = [[(lone, o) for o in others]]
      else:
        (i, j), (k, m) = neg, pos
        polys = [[(i, k), (i, m), (j, m)], [(i, k), (j, m), (j, k)]]
      for poly in polys:
        keys = np.stack([_edge_key(cid[:, a], cid[:, b], fv.size) for a, b in poly], -1)
        tri_keys.append(keys)
        # Outward reference direction: from the inside corners' mean to the outside corners' mean.
        tri_sides.append((cid[:, pos], cid[:, neg]))
  keys = np.concatenate(tri_keys)
  uniq, inv = np.unique(keys.ravel(), return_inverse=True)
  faces = inv.reshape(-1, 3)
  lo, hi = uniq // fv.size, uniq % fv.size
  coords = np.stack(np.unravel_index(np.arange(fv.size), f.shape), -1).astype(np.float64)
  t = fv[lo] / (fv[lo] - fv[hi])
  verts = np.asarray(origin, np.float64) + spacing * (
    coords[lo] + t[:, None] * (coords[hi] - coords[lo])
  )
  out_dir = np.concatenate([coords[p].mean(1) - coords[n].mean(1) for p, n in tri_sides])
  tri = verts[faces]
  normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
  flip = np.sum(normal * out_dir, -1) < 0
  faces[flip] = faces[flip][:, ::-1]
  return verts, faces


def _edge_key(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
  """Key of the grid edge (a, b) between flat sample indices: lo * n + hi with lo < hi."""
  lo, hi = np.minimum(a, b), np.maximum(a, b)
  return lo.astype(np.int64) * n + hi


def flip_edges(vertices: np.ndarray, faces: np.ndarray, *, max_dihedral_deg: float = 25.0) -> int:
  """Valence-equalising edge flips in place (closed oriented manifold). Returns the flip count.

  An edge (a, b) with opposite vertices c, d is replaced by (c, d) when that lowers the summed
  squared deviation of the four valences from 6, the two faces are nearly coplanar, both new faces
  keep the orientation, and (c, d) is not already an edge. V, F, closedness and genus are kept.
  """
  cos_max = np.cos(np.radians(max_dihedral_deg))
  f = faces
  nv = len(vertices)
  valence = np.zeros(nv, np.int64)
  edge_faces: dict = {}
  for fi, tri in enumerate(f.tolist()):
    for k in range(3):
      a, b = tri[k], tri[(k + 1) % 3]
      edge_faces[(a, b)] = fi
  und = {tuple(sorted(e)) for e in edge_faces}
  for a, b in und:
    valence[a] += 1
    valence[b] += 1
  flips = 0
  for a, b in sorted(und):
    if (a, b) not in edge_faces or (b, a) not in edge_faces:
      continue
    f1, f2 = edge_faces[(a, b)], edge_faces[(b, a)]
    t1, t2 = f[f1].tolist(), f[f2].tolist()
    c = t1[(t1.index(b) + 1) % 3]  # face (a, b, c)
    d = t2[(t2.index(a) + 1) % 3]  # face (b, a, d)
    if c == d or (c, d) in edge_faces or (d, c) in edge_faces:
      continue
    if valence[a] <= 4 or valence[b] <= 4:
      continue
    before = sum((valence[x] - 6) ** 2 for x in (a, b, c, d))
    after = (
      (valence[a] - 7) ** 2 + (valence[b] - 7) ** 2 + (valence[c] - 5) ** 2 + (valence[d] - 5) ** 2
    )
    if after >= before:
      continue
    p = vertices
    n1 = np.cross(p[b] - p[a], p[c] - p[a])
    n2 = np.cross(p[a] - p[b], p[d] - p[b])
    m1 = np.cross(p[d] - p[a], p[c] - p[a])  # new face (a, d, c)
    m2 = np.cross(p[b] - p[d], p[c] - p[d])  # new face (d, b, c)
    nrm = [np.linalg.norm(x) for x in (n1, n2, m1, m2)]
    if min(nrm) <= 1e-15 or n1 @ n2 < cos_max * nrm[0] * nrm[1]:
      continue
    avg = n1 / nrm[0] + n2 / nrm[1]
    if m1 @ avg <= 0 or m2 @ avg <= 0:
      continue
    f[f1] = (a, d, c)
    f[f2] = (d, b, c)
    for e in ((a, b), (b, c), (c, a), (b, a), (a, d), (d, b)):
      edge_faces.pop(e, None)
    for fi in (f1, f2):
      tri = f[fi].tolist()
      for k in range(3):
        edge_faces[(tri[k], tri[(k + 1) % 3])] = fi
    valence[a] -= 1
    valence[b] -= 1
    valence[c] += 1
    valence[d] += 1
    flips += 1
  return flips


def relax(vertices: np.ndarray, faces: np.ndarray, sdf, *, step: float = 0.5, eps: float = 1e-4):
  """One tangential Laplacian step followed by a Newton projection onto sdf's zero level set."""
  from jaxpose.body.mesh import neighbours, vertex_normals

  v = vertices
  nb = neighbours(faces, len(v))
  counts = np.array([len(n) for n in nb])
  centroid = np.zeros_like(v)
  np.add.at(centroid, np.repeat(np.arange(len(v)), counts), v[np.concatenate(nb)])
  centroid /= counts[:, None]
  n = vertex_normals(v, faces)
  d = centroid - v
  d -= np.sum(d * n, -1, keepdims=True) * n
  v = v + step * d
  for _ in range(2):
    val = sdf(v)
    grad = np.stack([(sdf(v + eps * e) - sdf(v - eps * e)) / (2 * eps) for e in np.eye(3)], -1)
    v = v - (val / np.maximum(np.sum(grad * grad, -1), 1e-12))[:, None] * grad
  return v
