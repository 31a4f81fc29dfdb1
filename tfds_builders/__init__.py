"""jaxpose TFDS builders; importing this package registers every dataset with TFDS.

Datasets: h36m, mpi_inf_3dhp, humaneva, pw3d (manual download of the official preprocessed files)
and deepmimic (embedded: built from the mocap clips inside the installed pybullet package),
deepmimic_render (embedded: the same motion rendered as 4-view images, see
jaxpose.data.deepmimic_render) and deepmimic_smpl (embedded: the same clips driving the synthetic
SMPL-format body, with body parameters for mesh models; jaxpose.data.deepmimic_smpl),
deepmimic_smpl_render (embedded: that body rendered as 4-view images with part labels and per-view
body parameters; jaxpose.data.deepmimic_smpl_render). Build
them with `jaxpose data build <name> [--config C] --manual_dir M --data_dir D`; no TensorFlow needed.

Optional (OPTIONAL; never built unless asked for): pose2sim, the Pose2Sim demo's real calibrated
4-view video with triangulated pseudo-3D (needs the `pose2sim` package or its demo folder, and
OpenCV; see tfds_builders/pose2sim).
"""

from tfds_builders import (
  deepmimic,
  deepmimic_render,
  deepmimic_smpl,
  deepmimic_smpl_render,
  h36m,
  humaneva,
  mpi_inf_3dhp,
  pose2sim,
  pw3d,
)

NAMES = (
  'h36m',
  'mpi_inf_3dhp',
  'humaneva',
  'pw3d',
  'deepmimic',
  'deepmimic_render',
  'deepmimic_smpl',
  'deepmimic_smpl_render',
  'pose2sim',
)
OPTIONAL = ('pose2sim',)

__all__ = [
  'NAMES',
  'OPTIONAL',
  'deepmimic',
  'deepmimic_render',
  'deepmimic_smpl',
  'deepmimic_smpl_render',
  'h36m',
  'humaneva',
  'mpi_inf_3dhp',
  'pose2sim',
  'pw3d',
]
