"""A differentiable soft rasteriser with SoftRas semantics, in pure JAX, tiled over pixels.

Paper: Liu, Li, Chen, Li, "Soft Rasterizer: A Differentiable Renderer for Image-based 3D Reasoning",
ICCV 2019, arXiv 1904.01786. Official code: github.com/ShichenLiu/SoftRas (read at master b569bed,
`soft_renderer/cuda/soft_rasterize_cuda_kernel.cu`, `rasterizer.py`, `renderer.py`, `mesh.py`).
Used by DSR (Dwivedi et al., ICCV 2021, arXiv 2110.03480, github.com/saidwivedi/DSR at 7d55d17):
`SoftRenderer(camera_mode='projection', P=K diag(1,-1,1)[I|t], orig_size=image_size=224,
sigma_val=1e-5, gamma_val=0.1, background 0, ambient light 1, directional 0)` with one colour per
face. Nothing here is copied from either repository; the semantics below were re-derived from them.

Per image, pixel p (centre in screen coordinates, see `camera.pixel_centers`) and face j with screen
vertices (x_k, y_k, z_k), k = 0, 1, 2 (from `camera.project`):

* w = screen-space barycentric coordinates of p (the 2x2 inverse with |det| clamped to >= 1e-10);
  p is inside iff 0 < w_k < 1 for every k (strict: a centre exactly on an edge is outside).
* d2 = squared Euclidean distance from p to the triangle's boundary (the nearest of the three
  edge segments), in screen units (the image spans 2, so one pixel is 2 / S wide).
* D_j = sigmoid(+d2 / sigma) inside, sigmoid(-d2 / sigma) outside. Faces with p outside and
  d2 >= sigma * log(1 / dist_eps - 1) are dropped for that pixel (SoftRas's cut-off: D < dist_eps).
* alpha = 1 - prod_j (1 - D_j) over every kept face (any orientation, any depth).
* w_c = clip(w, 0, 1) / max(sum clip(w, 0, 1), 1e-5); the depth z_j = 1 / sum_k (w_c,k / z_k)
  (perspective-correct); faces with z_j outside [near, far] do not colour the pixel, and neither
  do back faces unless `double_sided` (SoftRas's fill_back, on in DSR; SoftRas calls a face front
  when its vertices run clockwise in screen coordinates, y up).
* colour = (bg exp(eps / gamma) + sum_j D_j exp(zn_j / gamma) c_j) /
  (exp(eps / gamma) + sum_j D_j exp(zn_j / gamma)), zn_j = (far - z_j) / (far - near), with
  c_j the face colour (`face_colors`, SoftRas 'surface' textures at resolution 1, DSR's case) or
  the vertex colours interpolated with w_c (`vertex_colors`, SoftRas 'vertex' textures).
  Computed with the running maximum max(eps, max_j zn_j) subtracted (stop-gradient; the value does
  not depend on it).

Deviations from SoftRas:
* Gradients are JAX's autodiff of this forward, not SoftRas's hand-written CUDA backward.
* d2 is the distance to the nearest edge segment, computed directly; SoftRas reaches the same
  point through its barycentric edge-region cases (equal values; the kink sits on the same medial
  lines). 1 - D is evaluated as sigmoid(-s) (no cancellation for D close to 1).
* Colours have any number of channels C (DSR's nine one-channel part textures render in one pass
  over the geometry instead of nine RGB renders). No lighting: DSR's (ambient 1, directional 0)
  leaves colours unchanged. Surface textures with resolution > 1 and the 'hard', 'barycentric' and
  'sum' variants are not implemented; nor is anti-aliasing (off in SoftRenderer's defaults).
* SoftRas's surface-texture lookup at resolution 1 indexes past the face's texel when the clipped
  barycentric w_c,0 or w_c,1 equals 1 exactly (outside pixels in the corner wedges of vertices 0
  and 1), so there it reads the next face's colour; here every pixel uses its own face's colour.
* SoftRas's `legacy` branch (which DSR's README asks for) was not available to read; master's
  kernel (fill_back = colour both orientations, each face counted once) was. If legacy implements
  fill_back by duplicating reversed faces, its silhouette would be 1 - prod(1 - D)^2 and its colour
  weights doubled against the background term; not reflected here.

Tiling, speed and memory: the B images are cut into square tiles of `tile_size` pixels. Each tile
gets the faces whose bounding box, grown by the cut-off distance sqrt(sigma log(1/dist_eps - 1)),
meets its pixel centres (exact: the other faces contribute nothing), compacted into a static
(K,) list, K = `max_faces_per_tile` (None: K = F). If a tile has more than K candidates the
extra faces are dropped; `Rendered.tile_faces` reports the largest count so callers can check.
A `lax.map` walks steps of `tiles_per_step` tiles (sorted by candidate count, vectorised within a
step); each step runs a branch compiled for the smallest of the sizes 0, K/8, K/4, K/2, K that
holds its candidates, so empty tiles cost nothing and work follows the actual overlap. The
backward pass is a hand-written VJP over the same loop that recomputes each step with `jax.vjp`
(a tile-level checkpoint) and scatter-adds face gradients into one (B, F, 19 + C') table, so peak
memory is the face table, the (B, T, K) candidate lists and one step's
(tiles_per_step, tile_size^2, K) intermediates, independent of the number of tiles. Reverse-mode
only (no jvp / jacfwd); do not vmap over it (batch through the B axis instead). Measured numbers:
experiments/soft_rasteriser/README.md.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxpose.render import camera


class Rendered(NamedTuple):
  """Output of `soft_rasterize` / `soft_render`.

  Attributes:
    color: (B, S, S, C) aggregated colours (row 0 = top of the image).
    alpha: (B, S, S) silhouettes, 1 - prod(1 - D).
    tile_faces: (B,) int32, the most candidate faces any tile had. The render is exact iff
      tile_faces <= max_faces_per_tile (always true for max_faces_per_tile=None).
  """

  color: jax.Array
  alpha: jax.Array
  tile_faces: jax.Array


# Columns of the per-face table gathered for every tile.
_X, _Y, _Z, _BARY, _COLORABLE, _COLOR = 0, 3, 6, 9, 18, 19


def _face_table(screen: jax.Array, faces: jax.Array, colors: jax.Array, double_sided: bool):
  """One image's faces as a (F, 19 + C') table: x(3) y(3) z(3) barycentric map(9) colorable colours.

  Colours are C face colours, or 3 C vertex colours (vertex-major) for per-vertex colouring.
  """
  fv = screen[faces]  # (F, 3, 3)
  xy = fv[..., :2]
  # SoftRas's front-face test: negative signed area with screen y up (clockwise on screen).
  e1, e2 = xy[:, 1] - xy[:, 0], xy[:, 2] - xy[:, 0]
  front = e1[:, 0] * e2[:, 1] < e1[:, 1] * e2[:, 0]
  colorable = jnp.ones_like(front) if double_sided else front
  cols = [
    fv[..., 0],
    fv[..., 1],
    fv[..., 2],
    _barycentric_matrices(xy).reshape(-1, 9),
    colorable[:, None].astype(screen.dtype),
    colors.reshape(faces.shape[0], -1),
  ]
  return jnp.concatenate(cols, axis=-1)


def _barycentric_matrices(xy: jax.Array) -> jax.Array:
  """(F, 3, 2) triangles -> (F, 3, 3) affine maps from (x, y, 1) to barycentric coordinates."""
  x, y = xy[..., 0], xy[..., 1]
  x0, x1, x2 = x[..., 0], x[..., 1], x[..., 2]
  y0, y1, y2 = y[..., 0], y[..., 1], y[..., 2]
  adj = jnp.stack(
    [
      jnp.stack([y1 - y2, x2 - x1, x1 * y2 - x2 * y1], axis=-1),
      jnp.stack([y2 - y0, x0 - x2, x2 * y0 - x0 * y2], axis=-1),
      jnp.stack([y0 - y1, x1 - x0, x0 * y1 - x1 * y0], axis=-1),
    ],
    axis=-2,
  )
  det = x2 * (y0 - y1) + x0 * (y1 - y2) + x1 * (y2 - y0)
  det = jnp.where(det > 0, jnp.maximum(det, 1e-10), jnp.minimum(det, -1e-10))
  return adj / det[..., None, None]


def _shade(
  px: jax.Array,
  table: jax.Array,
  real: jax.Array,
  background: jax.Array,
  *,
  per_vertex: bool,
  sigma: float,
  gamma: float,
  near: float,
  far: float,
  eps: float,
  threshold: float,
) -> tuple[jax.Array, jax.Array]:
  """Shades P pixels against K faces.

  Args:
    px: (P, 2) pixel centres, screen coordinates.
    table: (K, 19 + C') rows of `_face_table`.
    real: (K,) bool, False for padding rows.
    background: (C,) background colour.

  Returns:
    colour (P, C), alpha (P,).
  """
  col = table.T  # (19 + C', K): every per-pair array below is (P, K), faces on the minor axis
  x, y = px[:, 0, None], px[:, 1, None]  # (P, 1)
  vx, vy, vz = col[_X : _X + 3], col[_Y : _Y + 3], col[_Z : _Z + 3]
  bary = col[_BARY : _BARY + 9]
  w = [x * bary[3 * k] + y * bary[3 * k + 1] + bary[3 * k + 2] for k in range(3)]
  inside = functools.reduce(jnp.logical_and, [(wk > 0) & (wk < 1) for wk in w])

  # Squared distance to the nearest edge segment.
  d2 = None
  for k in range(3):
    ex, ey = vx[(k + 1) % 3] - vx[k], vy[(k + 1) % 3] - vy[k]
    inv_len2 = 1.0 / jnp.maximum(ex * ex + ey * ey, 1e-30)
    ax, ay = x - vx[k], y - vy[k]
    t = jnp.clip((ax * ex + ay * ey) * inv_len2, 0.0, 1.0)
    dx, dy = ax - t * ex, ay - t * ey
    dk = dx * dx + dy * dy
    d2 = dk if d2 is None else jnp.minimum(d2, dk)

  logit = jnp.where(inside, d2, -d2) / sigma
  kept = real & (inside | (d2 < threshold))
  # sigmoid(logit) and 1 - sigmoid(logit) from one exponential, both without cancellation.
  e = jnp.exp(-jnp.abs(logit))
  inv = 1.0 / (1.0 + e)
  pos = logit >= 0
  prob = jnp.where(kept, jnp.where(pos, inv, e * inv), 0.0)
  alpha = 1.0 - jnp.prod(jnp.where(kept, jnp.where(pos, e * inv, inv), 1.0), axis=-1)

  wc = [jnp.clip(wk, 0.0, 1.0) for wk in w]
  wsum = jnp.maximum(wc[0] + wc[1] + wc[2], 1e-5)
  wc = [wk / wsum for wk in wc]
  inv_z = wc[0] / vz[0] + wc[1] / vz[1] + wc[2] / vz[2]
  # Double `where`: keeps 1 / 0 out of the graph so masked pairs cannot send NaN gradients.
  inv_z_ok = jnp.abs(inv_z) > 1e-30
  z = jnp.where(inv_z_ok, 1.0 / jnp.where(inv_z_ok, inv_z, 1.0), jnp.inf)
  colored = kept & (col[_COLORABLE] > 0) & (z >= near) & (z <= far)
  zn = jnp.where(colored, (far - z) / (far - near), eps)
  zmax = jax.lax.stop_gradient(jnp.maximum(jnp.max(zn, axis=-1, keepdims=True), eps))  # (P, 1)
  weight = jnp.where(colored, prob * jnp.exp((zn - zmax) / gamma), 0.0)
  weight_bg = jnp.exp((eps - zmax) / gamma)  # (P, 1)
  colors = col[_COLOR:]
  if per_vertex:
    c = colors.shape[0] // 3
    numer = sum((weight * wc[k]) @ colors[k * c : (k + 1) * c].T for k in range(3))
  else:
    numer = weight @ colors.T
  denom = jnp.sum(weight, axis=-1, keepdims=True) + weight_bg
  return (numer + weight_bg * background) / denom, alpha


def _tile_grid(image_size: int, tile_size: int, dtype) -> tuple[jax.Array, jax.Array, int]:
  """Pixel-centre coordinates per tile: (T, P, 2), per-tile bounds (T, 4) [x0, x1, y0, y1], n."""
  n = -(-image_size // tile_size)
  size = n * tile_size
  idx = jnp.arange(size, dtype=dtype)
  xs = (2.0 * idx + 1.0 - image_size) / image_size  # column centres
  ys = -xs  # row centres (row 0 at the top = screen y close to +1)
  xs, ys = xs.reshape(n, tile_size), ys.reshape(n, tile_size)
  # Tile (r, c): rows r * tile_size ..., columns c * tile_size ...
  gx = jnp.broadcast_to(xs[None, :, None, :], (n, n, tile_size, tile_size))
  gy = jnp.broadcast_to(ys[:, None, :, None], (n, n, tile_size, tile_size))
  px = jnp.stack([gx, gy], axis=-1).reshape(n * n, tile_size * tile_size, 2)
  bounds = jnp.stack(
    [
      jnp.broadcast_to(xs[None, :, 0], (n, n)),
      jnp.broadcast_to(xs[None, :, -1], (n, n)),
      jnp.broadcast_to(ys[:, None, -1], (n, n)),
      jnp.broadcast_to(ys[:, None, 0], (n, n)),
    ],
    axis=-1,
  ).reshape(n * n, 4)
  return px, bounds, n


def _candidates(xy: jax.Array, bounds: jax.Array, n: int, radius: float, max_faces: int):
  """Faces whose grown bounding box meets each tile, compacted to the front of (T, K) index rows.

  Args:
    xy: (F, 3, 2) screen coordinates of the faces.
    bounds: (T, 4) tile pixel-centre bounds [x0, x1, y0, y1], T = n * n, row-major tiles.
    n: tiles per image side.
    radius: how far a face may be from a pixel and still count (sqrt of the cut-off d2).
    max_faces: K.

  Returns:
    index (T, K) int32 face ids (the first `count` are valid), count (T,) int32 (may exceed K).
  """
  lo, hi = jnp.min(xy, axis=-2) - radius, jnp.max(xy, axis=-2) + radius  # (F, 2)
  bounds = bounds.reshape(n, n, 4)
  # Separable overlap test: tile (r, c) meets face f iff row r's y range and column c's x range do.
  col_hit = (lo[None, :, 0] <= bounds[0, :, 1, None]) & (hi[None, :, 0] >= bounds[0, :, 0, None])
  row_hit = (lo[None, :, 1] <= bounds[:, 0, 3, None]) & (hi[None, :, 1] >= bounds[:, 0, 2, None])
  num_faces = xy.shape[0]
  face_ids = jnp.broadcast_to(jnp.arange(num_faces, dtype=jnp.int32), (n, num_faces))
  tiles = jnp.broadcast_to(jnp.arange(n)[:, None], (n, num_faces))

  def one_row(row: jax.Array) -> tuple[jax.Array, jax.Array]:
    hit = col_hit & row[None]  # (n, F): the n tiles of one row of tiles
    slot = jnp.cumsum(hit, axis=-1, dtype=jnp.int32) - 1
    slot = jnp.where(hit & (slot < max_faces), slot, max_faces)  # misses, overflow -> column K
    index = jnp.zeros((n, max_faces + 1), jnp.int32).at[tiles, slot].set(face_ids)
    return index[:, :max_faces], jnp.sum(hit, axis=-1, dtype=jnp.int32)

  # One row of tiles at a time keeps the working set at n x F instead of n^2 x F.
  index, count = jax.lax.map(one_row, row_hit)
  return index.reshape(n * n, max_faces), count.reshape(n * n)


def _buckets(max_faces: int) -> tuple[int, ...]:
  """Static face counts a tile step is compiled for: 0, then K / 2^i for i < 4 (at least 32)."""
  sizes = [max_faces]
  while sizes[-1] > 32 and len(sizes) < 4:
    sizes.append(-(-sizes[-1] // 2))
  return (0,) + tuple(sorted(sizes))


def _tile_loop(shade, buckets: tuple[int, ...]):
  """The loop over steps of tiles, with a hand-written VJP that recomputes each step.

  Returns loop(table (B, F, D), px (T, P, 2), image_id (G, n), tile_id (G, n), index (G, n, K),
  count (G, n), background (C,)) -> colour (G, n, P, C), alpha (G, n, P). Each step runs the branch
  compiled for the smallest bucket that holds its largest candidate count (empty steps cost
  nothing). The backward pass walks the steps again, recomputes each with `jax.vjp` and
  scatter-adds the face-row gradients into one (B, F, D) accumulator, so memory stays at the face
  table plus one step, whatever the number of tiles (a `jax.checkpoint` around a `lax.switch`
  would save the union of the branches' residuals at every step).
  """
  shade = jax.vmap(shade, in_axes=(0, 0, 0, None))
  max_faces = buckets[-1]

  # Only per-step arrays go through the switch: a big operand (the face table, its gradient
  # accumulator) passed to a conditional may be copied at every step.
  def forward(k):
    def run(pixels, rows, count, background):
      if k == 0:
        shape = pixels.shape[:2]
        return jnp.broadcast_to(background, shape + background.shape), jnp.zeros(
          shape, pixels.dtype
        )
      real = jnp.arange(k)[None] < count[:, None]
      return shade(pixels, rows[:, :k], real, background)

    return run

  def backward(k):
    def run(pixels, rows, count, background, d_col, d_alp):
      if k == 0:
        return jnp.zeros_like(rows), jnp.sum(d_col, axis=(0, 1))
      real = jnp.arange(k)[None] < count[:, None]
      _, vjp = jax.vjp(lambda r, b: shade(pixels, r, real, b), rows[:, :k], background)
      d_rows, d_b = vjp((d_col, d_alp))
      return jnp.pad(d_rows, ((0, 0), (0, max_faces - k), (0, 0))), d_b

    return run

  forwards = [forward(k) for k in buckets]
  backwards = [backward(k) for k in buckets]

  def which(count):
    return jnp.searchsorted(jnp.asarray(buckets), jnp.max(count), side='left')

  @jax.custom_vjp
  def loop(table, px, image_id, tile_id, index, count, background):
    def step(xs):
      i, t, idx, c = xs
      rows = table[i[:, None], idx]  # (n, K, D)
      return jax.lax.switch(which(c), forwards, px[t], rows, c, background)

    return jax.lax.map(step, (image_id, tile_id, index, count))

  def loop_fwd(*args):
    return loop(*args), args

  def loop_bwd(args, cts):
    table, px, image_id, tile_id, index, count, background = args

    def step(carry, xs):
      d_table, d_bg = carry
      i, t, idx, c, d_col, d_alp = xs
      rows = table[i[:, None], idx]
      d_rows, d_b = jax.lax.switch(which(c), backwards, px[t], rows, c, background, d_col, d_alp)
      return (d_table.at[i[:, None], idx].add(d_rows), d_bg + d_b), None

    init = (jnp.zeros_like(table), jnp.zeros_like(background))
    (d_table, d_bg), _ = jax.lax.scan(step, init, (image_id, tile_id, index, count, *cts))
    return d_table, None, None, None, None, None, d_bg

  loop.defvjp(loop_fwd, loop_bwd)
  return loop


def tile_face_counts(
  screen: ArrayLike,
  faces: ArrayLike,
  *,
  image_size: int,
  tile_size: int = 8,
  sigma: float = 1e-5,
  dist_eps: float = 1e-4,
) -> jax.Array:
  """Candidate faces per tile, to size `max_faces_per_tile` (K must be >= the maximum).

  Args:
    screen: (B, V, 3) screen-space vertices (`camera.project`).
    faces: (F, 3) int.
    image_size, tile_size, sigma, dist_eps: as in `soft_rasterize`.

  Returns:
    (B, T) int32 counts, T = ceil(S / tile_size)^2 tiles in row-major order.
  """
  screen, faces = jnp.asarray(screen), jnp.asarray(faces, jnp.int32)
  _, bounds, n = _tile_grid(image_size, tile_size, screen.dtype)
  radius = math.sqrt(sigma * math.log(1.0 / dist_eps - 1.0))
  count_one = lambda xy: _candidates(xy, bounds, n, radius, 1)[1]
  return jax.vmap(count_one)(screen[:, faces, :2])


def soft_rasterize(
  screen: ArrayLike,
  faces: ArrayLike,
  *,
  image_size: int,
  face_colors: ArrayLike | None = None,
  vertex_colors: ArrayLike | None = None,
  sigma: float = 1e-5,
  gamma: float = 1e-4,
  near: float = 1.0,
  far: float = 100.0,
  eps: float = 1e-3,
  dist_eps: float = 1e-4,
  background: ArrayLike = 0.0,
  double_sided: bool = True,
  tile_size: int = 8,
  max_faces_per_tile: int | None = None,
  tiles_per_step: int = 4,
) -> Rendered:
  """Soft-rasterises screen-space triangles (SoftRas `soft_rasterize`, euclidean/softmax/prod).

  Args:
    screen: (B, V, 3) vertices from `camera.project`: screen x, y in [-1, 1] over the image
      (y up), depth z.
    faces: (F, 3) int vertex indices, shared by the batch.
    image_size: S, the output is S x S.
    face_colors: (F, C) or (B, F, C) one colour per face, or
    vertex_colors: (V, C) or (B, V, C) per-vertex colours (give at most one; neither = white, C = 3).
    sigma: sharpness of the probability maps, in squared screen units (SoftRas sigma_val).
    gamma: temperature of the depth softmax (gamma_val; DSR uses 0.1).
    near, far: depth range for colouring (not for alpha).
    eps: the background's softmax logit (SoftRas eps).
    dist_eps: faces whose probability would be below this are skipped (SoftRas dist_eps).
    background: scalar or (C,) background colour.
    double_sided: colour back faces too (SoftRas fill_back, the SoftRenderer default).
    tile_size: tile side in pixels.
    max_faces_per_tile: K, the static cap of candidate faces per tile (None: K = F, always
      exact). Faces beyond K in a tile are dropped: compare `Rendered.tile_faces` with K.
    tiles_per_step: tiles shaded together (vectorised) in one step of the tile loop.

  Returns:
    `Rendered` with color (B, S, S, C), alpha (B, S, S), tile_faces (B,).
  """
  screen = jnp.asarray(screen)
  faces = jnp.asarray(faces, jnp.int32)
  if screen.ndim != 3 or screen.shape[-1] != 3:
    raise ValueError(f'screen: expected (B, V, 3), got {screen.shape}')
  if faces.ndim != 2 or faces.shape[-1] != 3:
    raise ValueError(f'faces: expected (F, 3), got {faces.shape}')
  batch, num_vertices = screen.shape[:2]
  num_faces = faces.shape[0]
  if face_colors is not None and vertex_colors is not None:
    raise ValueError('give face_colors or vertex_colors, not both')
  per_vertex = vertex_colors is not None
  if per_vertex:
    colors, expected = jnp.asarray(vertex_colors, screen.dtype), num_vertices
  elif face_colors is not None:
    colors, expected = jnp.asarray(face_colors, screen.dtype), num_faces
  else:
    colors, expected = jnp.ones((num_faces, 3), screen.dtype), num_faces
  name = 'vertex_colors' if per_vertex else 'face_colors'
  if colors.ndim not in (2, 3) or colors.shape[-2] != expected:
    raise ValueError(f'{name}: expected ({expected}, C) or (B, {expected}, C), got {colors.shape}')
  if colors.ndim == 3 and colors.shape[0] != batch:
    raise ValueError(f'{name}: batch {colors.shape[0]} != vertices batch {batch}')
  if tile_size < 1 or image_size < 1 or tiles_per_step < 1:
    raise ValueError(
      f'image_size, tile_size, tiles_per_step must be >= 1, got '
      f'{image_size}, {tile_size}, {tiles_per_step}'
    )
  if max_faces_per_tile is not None and max_faces_per_tile < 1:
    raise ValueError(f'max_faces_per_tile: expected None or >= 1, got {max_faces_per_tile}')
  background = jnp.broadcast_to(jnp.asarray(background, screen.dtype), (colors.shape[-1],))
  threshold = sigma * math.log(1.0 / dist_eps - 1.0)
  shade = functools.partial(
    _shade,
    per_vertex=per_vertex,
    sigma=sigma,
    gamma=gamma,
    near=near,
    far=far,
    eps=eps,
    threshold=threshold,
  )
  color_axis = 0 if colors.ndim == 3 else None
  table = jax.vmap(_face_table, in_axes=(0, None, color_axis, None))(
    screen, faces, colors, double_sided
  )  # (B, F, 19 + C')
  px, bounds, n = _tile_grid(image_size, tile_size, screen.dtype)
  num_tiles = n * n
  cap = num_faces if max_faces_per_tile is None else min(max_faces_per_tile, num_faces)
  xy = jax.lax.stop_gradient(screen[:, faces, :2])  # (B, F, 3, 2)
  index, count = jax.vmap(_candidates, in_axes=(0, None, None, None, None))(
    xy, bounds, n, math.sqrt(threshold), cap
  )  # (B, T, K), (B, T)
  tile_faces = jnp.max(count, axis=-1)

  # Flatten (image, tile); with several tiles per step, sort by candidate count so that the tiles of
  # one step need about the same number of faces; pad to whole steps with empty tiles.
  total = batch * num_tiles
  count = jnp.minimum(count.reshape(total), cap)
  index = index.reshape(total, cap)
  image_id = jnp.repeat(jnp.arange(batch, dtype=jnp.int32), num_tiles)
  tile_id = jnp.tile(jnp.arange(num_tiles, dtype=jnp.int32), batch)
  order = jnp.argsort(-count, stable=True) if tiles_per_step > 1 else jnp.arange(total)
  steps = -(-total // tiles_per_step)
  pad = steps * tiles_per_step - total

  def grouped(a: jax.Array) -> jax.Array:
    a = jnp.concatenate([a[order], jnp.zeros((pad,) + a.shape[1:], a.dtype)])
    return a.reshape((steps, tiles_per_step) + a.shape[1:])

  loop = _tile_loop(shade, _buckets(cap))
  color, alpha = loop(
    table, px, *(grouped(a) for a in (image_id, tile_id, index, count)), background
  )
  inverse = jnp.argsort(order)
  size = n * tile_size

  def untile(a: jax.Array) -> jax.Array:
    a = a.reshape((steps * tiles_per_step,) + a.shape[2:])[:total][inverse]
    a = a.reshape((batch, n, n, tile_size, tile_size) + a.shape[2:])
    a = jnp.swapaxes(a, 2, 3).reshape((batch, size, size) + a.shape[5:])
    return a[:, :image_size, :image_size]

  return Rendered(color=untile(color), alpha=untile(alpha), tile_faces=tile_faces)


def soft_render(
  vertices: ArrayLike,
  faces: ArrayLike,
  P: ArrayLike,
  *,
  image_size: int,
  orig_size: float | None = None,
  **kwargs,
) -> Rendered:
  """Projects with `camera.project` and soft-rasterises: SoftRas's SoftRenderer in 'projection' mode.

  Args:
    vertices: (B, V, 3) vertices (metres) in the frame P expects.
    faces: (F, 3) int vertex indices.
    P: (B, 3, 4) or (3, 4) projection matrices in pixels (e.g. `camera.dsr_projection_matrix`).
    image_size: S, the output size in pixels.
    orig_size: the image size P is written for (defaults to image_size, as in DSR).
    **kwargs: the keyword arguments of `soft_rasterize` (colours, sigma, gamma, tiling, ...).

  Returns:
    `Rendered` with color (B, S, S, C), alpha (B, S, S), tile_faces (B,).
  """
  vertices = jnp.asarray(vertices)
  P = jnp.asarray(P, vertices.dtype)
  if vertices.ndim != 3:
    raise ValueError(f'vertices: expected (B, V, 3), got {vertices.shape}')
  if P.shape[-2:] != (3, 4):
    raise ValueError(f'P: expected (B, 3, 4) or (3, 4), got {P.shape}')
  screen = camera.project(vertices, P, image_size if orig_size is None else orig_size)
  return soft_rasterize(screen, faces, image_size=image_size, **kwargs)
