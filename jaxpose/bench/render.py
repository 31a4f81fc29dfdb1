"""Speed and memory of the soft rasteriser (`jaxpose.render.soft`) at DSR's setting.

Setting (DSR, Dwivedi et al. ICCV 2021, arXiv 2110.03480; research/dsr.md §3): 224 x 224 crops,
f = 5000 px, principal point at the centre, the body about 50 m away (t_z = 2 f / (S s)),
sigma = 1e-5, gamma = 0.1, one colour per face. DSR renders 9 textures per sample (1 DSR-MC + 8
DSR-C, each an RGB repeat of one channel); jaxpose renders them as 9 channels of one pass
(`channels=9`).

Mesh: any (V, 3), (F, 3) mesh; the default is a closed genus-0 mesh with SMPL's sizes
(V = 6890, F = 2 V - 4 = 13776: the convex hull of a Fibonacci sphere) stretched to a body-sized
ellipsoid (semi-axes 0.3 x 0.95 x 0.2 m, about 60 x 190 px on screen). A real SMPL body has more
overlap (arms over the torso), so its tiles hold more faces: size `max_faces_per_tile` with
`soft.tile_face_counts` on representative poses.

Protocol (`bench_render`): the forward `soft_render` and the gradient of a scalar loss
(sum of colour and silhouette weighted by fixed random maps) with respect to the vertices
(DSR's case; the textures are fixed labels) are jitted and compiled ahead of time; after `warmup`
calls, `repeats` timed calls each; reported: the median and minimum wall seconds per call and per
image, the process CPU seconds of the fastest call, XLA's compiled memory analysis (temporary,
argument and output bytes) and the process's peak resident memory (`ru_maxrss`). Run each setting in
a fresh process for a clean peak RSS (`python -m jaxpose.bench.render --batch 4`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxpose.render import camera, soft, zbuffer


def body_sized_mesh(
  num_vertices: int = 6890, semi_axes: tuple[float, float, float] = (0.3, 0.95, 0.2)
) -> tuple[np.ndarray, np.ndarray]:
  """A closed mesh with V vertices and 2 V - 4 outward-oriented faces (an ellipsoid, metres).

  Returns:
    vertices (V, 3) float64 centred at the origin (y is the long axis), faces (2 V - 4, 3) int32.
  """
  from scipy.spatial import ConvexHull  # a jax dependency; only the benchmark mesh needs it

  i = np.arange(num_vertices) + 0.5
  polar = np.arccos(1.0 - 2.0 * i / num_vertices)
  azimuth = np.pi * (1.0 + math.sqrt(5.0)) * i
  sphere = np.stack(
    [np.cos(azimuth) * np.sin(polar), np.cos(polar), np.sin(azimuth) * np.sin(polar)], axis=1
  )
  faces = ConvexHull(sphere).simplices.astype(np.int32)
  tri = sphere[faces]
  normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
  inward = np.sum(normal * tri.mean(1), axis=1) < 0
  faces[inward] = faces[inward][:, ::-1]
  return sphere * np.asarray(semi_axes), faces


def _time_calls(fn: Callable[..., Any], args: tuple, warmup: int, repeats: int) -> dict[str, float]:
  for _ in range(warmup):
    jax.block_until_ready(fn(*args))
  wall, cpu = [], []
  for _ in range(repeats):
    t0, c0 = time.perf_counter(), time.process_time()
    jax.block_until_ready(fn(*args))
    wall.append(time.perf_counter() - t0)
    cpu.append(time.process_time() - c0)
  best = int(np.argmin(wall))
  return {'median_s': statistics.median(wall), 'min_s': wall[best], 'cpu_s_of_min': cpu[best]}


def _memory(compiled: Any) -> dict[str, int | None]:
  try:
    m = compiled.memory_analysis()
  except Exception:  # some backends do not implement it
    return {'temp_bytes': None, 'argument_bytes': None, 'output_bytes': None}
  return {
    'temp_bytes': int(m.temp_size_in_bytes),
    'argument_bytes': int(m.argument_size_in_bytes),
    'output_bytes': int(m.output_size_in_bytes),
  }


def _peak_rss_bytes() -> int:
  return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # Linux: KiB


def bench_render(
  vertices: np.ndarray | None = None,
  faces: np.ndarray | None = None,
  *,
  batch: int = 1,
  image_size: int = 224,
  channels: int = 9,
  focal_length: float = 5000.0,
  depth: float = 50.0,
  sigma: float = 1e-5,
  gamma: float = 0.1,
  tile_size: int = 8,
  max_faces_per_tile: int | str | None = 'auto',
  tiles_per_step: int = 4,
  backward: bool = True,
  warmup: int = 1,
  repeats: int = 3,
) -> dict[str, Any]:
  """Forward and backward time and memory of `soft_render` on one mesh, B copies.

  Args:
    vertices, faces: (V, 3) metres and (F, 3) int; default `body_sized_mesh()`.
    batch: B images per call (each copy slightly rotated so the images differ).
    image_size: S pixels.
    channels: C face-colour channels.
    focal_length, depth: camera (pixels) and the mesh's distance (metres) along the optical axis.
    sigma, gamma: SoftRas parameters.
    tile_size, tiles_per_step: tiling of `soft_rasterize`.
    max_faces_per_tile: K, None (K = F), or 'auto': the largest count of the batch rounded up to
      a multiple of 32 with 12.5 % headroom.
    backward: also time the gradient with respect to the vertices.
    warmup, repeats: untimed and timed calls.

  Returns:
    A flat dict of settings and measurements (seconds, bytes); `*_per_image_s` divide by B.
  """
  if vertices is None or faces is None:
    vertices, faces = body_sized_mesh()
  vertices, faces = np.asarray(vertices, np.float64), np.asarray(faces, np.int32)
  rss_start = _peak_rss_bytes()
  angles = np.linspace(0.0, 0.3, batch)
  rot = np.stack(
    [[[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]] for a in angles]
  )
  verts = jnp.asarray(np.einsum('bij,vj->bvi', rot, vertices), jnp.float32)
  cam_t = np.tile([[0.0, 0.0, depth]], (batch, 1))
  P = jnp.asarray(camera.dsr_projection_matrix(cam_t, focal_length, image_size), jnp.float32)
  rng = np.random.default_rng(0)
  colors = jnp.asarray(rng.uniform(0, 1, (len(faces), channels)), jnp.float32)
  counts = soft.tile_face_counts(
    camera.project(verts, P, image_size), faces, image_size=image_size, tile_size=tile_size,
    sigma=sigma,
  )  # fmt: skip
  max_count = int(jnp.max(counts))
  if max_faces_per_tile == 'auto':
    max_faces_per_tile = min(len(faces), 32 * math.ceil(max_count * 1.125 / 32))
  kwargs = dict(
    image_size=image_size,
    face_colors=colors,
    sigma=sigma,
    gamma=gamma,
    tile_size=tile_size,
    max_faces_per_tile=max_faces_per_tile,
    tiles_per_step=tiles_per_step,
  )
  w_color = jnp.asarray(rng.normal(size=(batch, image_size, image_size, channels)), jnp.float32)
  w_alpha = jnp.asarray(rng.normal(size=(batch, image_size, image_size)), jnp.float32)

  def forward(v):
    out = soft.soft_render(v, faces, P, **kwargs)
    return out.color, out.alpha

  def loss(v):
    color, alpha = forward(v)
    return jnp.sum(color * w_color) + jnp.sum(alpha * w_alpha)

  result: dict[str, Any] = {
    'device': jax.devices()[0].device_kind,
    'backend': jax.default_backend(),
    'cpu_count': os.cpu_count(),
    'machine': platform.processor() or platform.machine(),
    'jax': jax.__version__,
    'batch': batch,
    'image_size': image_size,
    'channels': channels,
    'num_vertices': len(vertices),
    'num_faces': len(faces),
    'sigma': sigma,
    'gamma': gamma,
    'tile_size': tile_size,
    'tiles_per_step': tiles_per_step,
    'max_faces_per_tile': max_faces_per_tile,
    'tile_faces_max': max_count,
    'tiles_nonempty': int(jnp.sum(counts > 0)),
    'tiles_total': int(counts.size),
  }
  result['peak_rss_before_compile_bytes'] = _peak_rss_bytes()
  runs = [('fwd', forward)] + ([('fwd_bwd', jax.grad(loss))] if backward else [])
  for name, fn in runs:
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(verts).compile()
    result[f'{name}_compile_s'] = time.perf_counter() - t0
    result[f'{name}_peak_rss_after_compile_bytes'] = _peak_rss_bytes()
    for key, value in _memory(compiled).items():
      result[f'{name}_{key}'] = value
    timing = _time_calls(compiled, (verts,), warmup, repeats)
    for key, value in timing.items():
      result[f'{name}_{key}'] = value
    result[f'{name}_per_image_s'] = timing['median_s'] / batch
    result[f'{name}_peak_rss_after_runs_bytes'] = _peak_rss_bytes()
  if backward:
    result['bwd_only_per_image_s'] = result['fwd_bwd_per_image_s'] - result['fwd_per_image_s']
  result['peak_rss_bytes'] = _peak_rss_bytes()
  result['peak_rss_start_bytes'] = rss_start
  return result


def bench_zbuffer(
  vertices: np.ndarray | None = None,
  faces: np.ndarray | None = None,
  *,
  image_size: int = 512,
  repeats: int = 5,
) -> dict[str, Any]:
  """Seconds per numpy z-buffer render (project + rasterise + shade) of one mesh at S x S."""
  if vertices is None or faces is None:
    vertices, faces = body_sized_mesh()
  f = 5000.0 * image_size / 224
  K = np.array([[f, 0, image_size / 2], [0, f, image_size / 2], [0, 0, 1]])
  t = np.array([0.0, 0.0, 50.0])
  colors = np.random.default_rng(0).uniform(0, 1, (len(faces), 3))
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    img = zbuffer.render(vertices, faces, K, image_size, image_size, t=t, face_colors=colors)
    times.append(time.perf_counter() - t0)
  return {
    'image_size': image_size,
    'num_faces': len(faces),
    'covered_pixels': int(img.mask.sum()),
    'median_s': statistics.median(times),
    'min_s': min(times),
  }


def main(argv: list[str] | None = None) -> None:
  """`python -m jaxpose.bench.render [--batch B] ...`: one setting, one JSON line on stdout."""
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--batch', type=int, default=1)
  parser.add_argument('--image-size', type=int, default=224)
  parser.add_argument('--channels', type=int, default=9)
  parser.add_argument('--tile-size', type=int, default=8)
  parser.add_argument('--tiles-per-step', type=int, default=4)
  parser.add_argument('--max-faces-per-tile', default='auto', help="'auto', 'none' or an int")
  parser.add_argument('--repeats', type=int, default=3)
  parser.add_argument('--no-backward', action='store_true')
  parser.add_argument('--zbuffer', action='store_true', help='time the numpy z-buffer instead')
  args = parser.parse_args(argv)
  if args.zbuffer:
    print(json.dumps(bench_zbuffer(image_size=args.image_size)))
    return
  cap = args.max_faces_per_tile
  cap = None if cap == 'none' else (cap if cap == 'auto' else int(cap))
  result = bench_render(
    batch=args.batch,
    image_size=args.image_size,
    channels=args.channels,
    tile_size=args.tile_size,
    tiles_per_step=args.tiles_per_step,
    max_faces_per_tile=cap,
    backward=not args.no_backward,
    repeats=args.repeats,
  )
  print(json.dumps(result))


if __name__ == '__main__':
  main()
