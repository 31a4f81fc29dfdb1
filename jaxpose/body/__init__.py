"""SMPL-format bodies in JAX (in progress): the mesh toolkit.

Submodules:
  mesh        topology, normals, quadric decimation, COMA-style down/up-sampling matrices (and the
              official mesh_downsampling.npz reader), PMCE's coordinate/normal/edge losses.

Imports only jaxpose.geometry, numpy and jax.
"""

from jaxpose.body import mesh

__all__ = ['mesh']
