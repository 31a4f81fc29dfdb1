"""jaxpose TFDS builders; importing this package registers every dataset with TFDS.

Datasets: h36m, mpi_inf_3dhp, humaneva, pw3d (manual download of the official preprocessed files)
and deepmimic (embedded: built from the mocap clips inside the installed pybullet package) and
deepmimic_render (embedded: the same motion rendered as 4-view images, jaxpose.data.deepmimic_render). Build
them with `jaxpose data build <name> [--config C] --manual_dir M --data_dir D`; no TensorFlow needed.
"""

from tfds_builders import deepmimic, deepmimic_render, h36m, humaneva, mpi_inf_3dhp, pw3d

NAMES = ('h36m', 'mpi_inf_3dhp', 'humaneva', 'pw3d', 'deepmimic', 'deepmimic_render')

__all__ = ['NAMES', 'deepmimic', 'deepmimic_render', 'h36m', 'humaneva', 'mpi_inf_3dhp', 'pw3d']
