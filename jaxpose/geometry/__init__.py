"""Geometry: joint layouts, cameras, Procrustes alignment and rotations.

Submodules: `skeleton` (layouts, flips, joint maps, graphs), `camera` (VideoPose3D camera model,
screen normalisation, H36M constants), `procrustes` (batched similarity alignment), `rotation`
(quaternion / axis-angle / 6D / matrix conversions, slerp), `validation` (host-side input checks).
"""

from jaxpose.geometry import camera, skeleton
from jaxpose.geometry.skeleton import Skeleton, flip_pose, root_relative

__all__ = ['Skeleton', 'camera', 'flip_pose', 'root_relative', 'skeleton']
