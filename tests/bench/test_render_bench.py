"""The soft-rasteriser benchmark: its mesh and a tiny run of each entry point."""

import numpy as np

from jaxpose.bench import render


def test_body_sized_mesh_is_closed_and_outward():
  v, f = render.body_sized_mesh(200)
  assert v.shape == (200, 3) and f.shape == (396, 3)  # F = 2 V - 4: a closed genus-0 mesh
  edges = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
  _, counts = np.unique(edges, axis=0, return_counts=True)
  assert np.all(counts == 2)  # every edge shared by exactly two faces
  tri = v[f]
  volume = np.einsum('fi,fi->f', tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6
  np.testing.assert_allclose(volume, 4 / 3 * np.pi * 0.3 * 0.95 * 0.2, rtol=0.05)  # positive


def test_bench_render_and_zbuffer_run_tiny():
  v, f = render.body_sized_mesh(100)
  out = render.bench_render(
    v, f, batch=2, image_size=32, channels=2, focal_length=700.0, warmup=0, repeats=1
  )
  assert out['num_faces'] == 196 and out['batch'] == 2
  assert 0 < out['tile_faces_max'] <= out['max_faces_per_tile']
  assert out['fwd_median_s'] > 0 and out['fwd_bwd_median_s'] > 0
  assert out['peak_rss_bytes'] >= out['peak_rss_start_bytes'] > 0
  z = render.bench_zbuffer(v, f, image_size=64, repeats=1)
  assert z['covered_pixels'] > 0 and z['median_s'] > 0
