"""What every jaxpose image builder shares: the per-frame multi-view record, validation, output.

Record layout (one record per synchronised frame of a take; V views, J joints; the API of
`jaxpose.data.image_pipeline`, plan CONTRACTS §4):

  images        (V,) bytes    encoded JPEG or PNG, RGB, one per view
  part_masks    (V,) bytes    PNG, uint8 part labels (0 = background); b'' when the dataset has none
  kp2d_px       (V, J, 2) float32  2D joints in full-image pixels (x right, y down, origin at the
                                   top-left pixel's centre), as they appear in the stored image
  kp2d_vis      (V, J) float32     1 visible, 0 not
  pose3d_world  (J, 3) float32     metres, world frame
  pose3d_cam    (V, J, 3) float32  metres, each camera's frame (X_cam = R X_world + t)
  K             (V, 3, 3) float32  pixel intrinsics of each stored image
  dist          (V, 5) float32     distortion (k1, k2, p1, p2, k3) of each image; zeros if none
  R, t          (V, 3, 3), (V, 3) float32  world -> camera, metres
  res_w, res_h  (V,) int32         image sizes, pixels
  cameras       (V,) str           camera names
  subject, action                  str; a take is (subject, action)
  take_id       int32              index of the take in the dataset
  frame_idx     int32              frame index within the take, at the dataset's fps
  source        str                where the frame came from

Dataset metadata: kind='image', layout_2d, layout_3d, num_views, fps, cameras, part_names (label
names, index = label), pose3d_units='m', notes.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from jaxpose.data import images
from jaxpose.data.io import DataFormatError, as_array

Example = dict[str, Any]


def image_features(num_joints: int) -> tfds.features.FeaturesDict:
  """The FeaturesDict of one frame record (see the module docstring); V is free per dataset."""
  f = tfds.features
  v, j = None, num_joints
  return f.FeaturesDict(
    {
      'images': f.Tensor(shape=(v,), dtype=np.object_),
      'part_masks': f.Tensor(shape=(v,), dtype=np.object_),
      'kp2d_px': f.Tensor(shape=(v, j, 2), dtype=np.float32),
      'kp2d_vis': f.Tensor(shape=(v, j), dtype=np.float32),
      'pose3d_world': f.Tensor(shape=(j, 3), dtype=np.float32),
      'pose3d_cam': f.Tensor(shape=(v, j, 3), dtype=np.float32),
      'K': f.Tensor(shape=(v, 3, 3), dtype=np.float32),
      'dist': f.Tensor(shape=(v, 5), dtype=np.float32),
      'R': f.Tensor(shape=(v, 3, 3), dtype=np.float32),
      't': f.Tensor(shape=(v, 3), dtype=np.float32),
      'res_w': f.Tensor(shape=(v,), dtype=np.int32),
      'res_h': f.Tensor(shape=(v,), dtype=np.int32),
      'cameras': f.Tensor(shape=(v,), dtype=np.object_),
      'subject': f.Text(),
      'action': f.Text(),
      'take_id': f.Scalar(dtype=np.int32),
      'frame_idx': f.Scalar(dtype=np.int32),
      'source': f.Text(),
    }
  )


def make_image_example(
  *,
  where: str,
  images_enc: Sequence[bytes],
  kp2d_px: np.ndarray,
  pose3d_world: np.ndarray,
  pose3d_cam: np.ndarray,
  K: np.ndarray,
  R: np.ndarray,
  t: np.ndarray,
  res_w: Sequence[int],
  res_h: Sequence[int],
  cameras: Sequence[str],
  subject: str,
  action: str,
  take_id: int,
  frame_idx: int,
  num_joints: int,
  part_masks: Sequence[bytes] | None = None,
  kp2d_vis: np.ndarray | None = None,
  dist: np.ndarray | None = None,
  source: str = '',
) -> Example:
  """Validates one frame record (shapes, views agree, finite values, invertible K).

  Args:
    where: names the record in errors (e.g. 'DM/walk frame 3').
    images_enc: V encoded images.
    (others): as in the module docstring; kp2d_vis defaults to ones, dist to zeros, part_masks to
      empty bytes, source to `where`.

  Raises:
    DataFormatError: a shape, view count or finiteness problem, naming the record and view.
    jaxpose.data.images.CameraError: a K that is not invertible, naming the record and view.
  """
  v = len(images_enc)
  if v == 0:
    raise DataFormatError(where, 'images', 'at least one view', '0 views')
  kp = as_array(kp2d_px, where, 'kp2d_px', (v, num_joints, 2))
  vis = np.ones((v, num_joints), np.float32) if kp2d_vis is None else kp2d_vis
  dist = np.zeros((v, 5), np.float32) if dist is None else dist
  masks = [b''] * v if part_masks is None else list(part_masks)
  if len(masks) != v or len(cameras) != v or len(res_w) != v or len(res_h) != v:
    raise DataFormatError(
      where,
      'views',
      f'{v} views in images, part_masks, cameras, res_w and res_h',
      f'{len(masks)} masks, {len(cameras)} cameras, {len(res_w)} / {len(res_h)} sizes',
    )
  k = as_array(K, where, 'K', (v, 3, 3))
  for i in range(v):
    images.check_intrinsics(k[i], f'{where} view {i} (camera {cameras[i]}) K')
  return {
    'images': np.array([bytes(b) for b in images_enc], dtype=object),
    'part_masks': np.array([bytes(b) for b in masks], dtype=object),
    'kp2d_px': kp,
    'kp2d_vis': as_array(vis, where, 'kp2d_vis', (v, num_joints)),
    'pose3d_world': as_array(pose3d_world, where, 'pose3d_world', (num_joints, 3)),
    'pose3d_cam': as_array(pose3d_cam, where, 'pose3d_cam', (v, num_joints, 3)),
    'K': k,
    'dist': as_array(dist, where, 'dist', (v, 5)),
    'R': as_array(R, where, 'R', (v, 3, 3)),
    't': as_array(t, where, 't', (v, 3)),
    'res_w': np.asarray(res_w, np.int32),
    'res_h': np.asarray(res_h, np.int32),
    'cameras': np.array([str(c) for c in cameras], dtype=object),
    'subject': str(subject),
    'action': str(action),
    'take_id': np.int32(take_id),
    'frame_idx': np.int32(frame_idx),
    'source': source or where,
  }


_SERIALIZE_LOCK = threading.Lock()


@contextlib.contextmanager
def deterministic_serialization() -> Iterator[None]:
  """Makes TFDS serialise examples with sorted feature keys while the block runs.

  TFDS writes each record as a tf.train.Example, whose `features` is a protobuf map; the default
  `SerializeToString()` emits map entries in an order that changes from process to process (hash
  seeding), so two builds of identical data give different bytes. `deterministic=True` sorts them.
  TFDS has no hook for this, so ExampleSerializer.serialize_example is swapped for the duration
  (under a lock; builds in other threads of the same process serialise deterministically too).
  """
  from tensorflow_datasets.core import example_serializer

  cls = example_serializer.ExampleSerializer
  with _SERIALIZE_LOCK:
    original = cls.serialize_example

    def serialize_example(self, example):
      return self.get_tf_example(example).SerializeToString(deterministic=True)

    cls.serialize_example = serialize_example
    try:
      yield
    finally:
      cls.serialize_example = original


class ImageBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Base class of per-frame image builders: array_record output, records kept in generation order.

  Subclasses define `_metadata()` and `_split_generators` (and may extend `_features()`). `disable_shuffling` keeps the records
  in the order they are generated (take by take, frame by frame) and `deterministic_serialization`
  fixes the byte order inside each record, so two builds give byte-identical files (also in
  different processes) and readers index frames without a lookup table. TFDS writes into an
  `incomplete.*` directory renamed only on success, so a failed build leaves nothing a later
  `tfds.data_source` would accept.
  """

  NEEDS_MANUAL_DIR = False
  KIND = 'image'
  NUM_JOINTS = 17

  def __init__(self, *, file_format: str | None = None, **kwargs: Any):
    super().__init__(file_format=file_format or 'array_record', **kwargs)

  def _metadata(self) -> dict[str, Any]:
    raise NotImplementedError

  def _download_and_prepare(self, dl_manager, download_config=None) -> None:
    with deterministic_serialization():
      super()._download_and_prepare(dl_manager, download_config)

  def _features(self) -> tfds.features.FeaturesDict:
    """The record features: `image_features`; a builder with more per-record keys extends it."""
    return image_features(self.NUM_JOINTS)

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
      features=self._features(),
      metadata=tfds.core.MetadataDict({'kind': self.KIND, **self._metadata()}),
      supervised_keys=None,
      disable_shuffling=True,
    )
