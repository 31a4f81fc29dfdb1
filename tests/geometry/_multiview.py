"""Synthetic multi-view rigs and skeletons for the triangulation / epipolar tests."""

import numpy as np

from jaxpose.geometry import triangulation as tri


def look_at(centre, target=(0.0, 0.0, 1.0), up=(0.0, 0.0, 1.0)):
  """World -> camera (R, t) for a camera at `centre` looking at `target` (OpenCV axes, z-up world)."""
  centre, target, up = (np.asarray(v, np.float64) for v in (centre, target, up))
  z = target - centre
  z /= np.linalg.norm(z)
  x = np.cross(z, up)
  x /= np.linalg.norm(x)
  y = np.cross(z, x)
  r = np.stack([x, y, z])
  return r, -r @ centre


def rig(rng, views=4, radius=4.0):
  """V cameras on a ring around the origin, 1000x1000 px, f ~ 1000 px: (K (V,3,3), R, t, P)."""
  ks, rs, ts = [], [], []
  for v in range(views):
    a = 2 * np.pi * v / views + rng.uniform(-0.3, 0.3)
    c = [radius * np.cos(a), radius * np.sin(a), rng.uniform(0.5, 2.0)]
    r, t = look_at(c, target=rng.normal(scale=0.1, size=3) + [0, 0, 1])
    f = rng.uniform(900, 1200)
    ks.append(np.array([[f, 0, 500 + rng.uniform(-20, 20)], [0, f * 1.001, 500], [0, 0, 1]]))
    rs.append(r)
    ts.append(t)
  k, r, t = np.stack(ks), np.stack(rs), np.stack(ts)
  return k, r, t, tri.projection_matrix(k, r, t)


def skeleton(rng, joints=17):
  return rng.normal(scale=0.3, size=(joints, 3)) + [0.0, 0.0, 1.0]
