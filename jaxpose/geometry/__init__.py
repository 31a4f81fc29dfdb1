"""Geometry: joint layouts, cameras, Procrustes alignment, rotations and input validation.

Submodules: `skeleton` (layouts, flips, joint maps, graphs), `camera` (VideoPose3D camera model,
screen normalisation, H36M constants), `procrustes` (batched similarity alignment), `rotation`
(quaternion / axis-angle / 6D / matrix conversions, slerp), `validation` (host-side input checks).
"""

from jaxpose.geometry import camera, procrustes, rotation, skeleton, validation
from jaxpose.geometry.skeleton import Skeleton, flip_pose, root_relative
from jaxpose.geometry.validation import validate_poses

__all__ = [
  'Skeleton',
  'camera',
  'flip_pose',
  'procrustes',
  'root_relative',
  'rotation',
  'skeleton',
  'validate_poses',
  'validation',
]
