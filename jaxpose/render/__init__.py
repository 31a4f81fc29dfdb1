"""Rendering: a differentiable soft rasteriser (SoftRas semantics, pure JAX) and a numpy z-buffer.

Submodules: `camera` (SoftRas projection, DSR's NMR y-flip, pixel-centre conventions), `soft`
(the tiled soft rasteriser), `zbuffer` (a hard z-buffer reference for tests and host-side dataset
rendering). Imports only `jaxpose.geometry`.
"""

from jaxpose.render import camera, soft, zbuffer
from jaxpose.render.camera import dsr_projection_matrix, project, projection_matrix
from jaxpose.render.soft import Rendered, soft_rasterize, soft_render, tile_face_counts

__all__ = [
  'Rendered',
  'camera',
  'dsr_projection_matrix',
  'project',
  'projection_matrix',
  'soft',
  'soft_rasterize',
  'soft_render',
  'tile_face_counts',
  'zbuffer',
]
