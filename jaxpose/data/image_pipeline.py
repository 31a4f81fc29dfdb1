"""The image input pipeline: grain over per-frame multi-view image records (no TensorFlow).

Same entry points as `jaxpose.data.pipeline` (which delegates here when the dataset's metadata
says kind == 'image'):

  it = train_iterator(config.data, seed=config.seed, process_index=p, process_count=n)
  batch = next(it)          # per-host batch: data.batch_size // n examples
  state = it.get_state()    # {'batches': n, 'seed': s}; set_state resumes the same stream
  for batch in eval_batches(config.data, 'test', process_index=p, process_count=n): ...
  sequence_table(config.data, split), num_windows(config.data, split)

Batch keys (plan CONTRACTS §3, jaxpose/types.py; b examples, V = data.image.views, H = W = data.image.size; with
V > 1 every per-view key (types.IMAGE_PER_VIEW_KEYS) gets a view axis after b, e.g. image_u8
(b, V, H, W, 3)):

  image_u8       (b, H, W, 3) uint8     RGB crop, augmented (normalise on device with
                                        jaxpose.data.images.imagenet_normalize)
  kp2d_px        (b, J, 2) float32      2D joints in crop pixels
  kp2d_vis       (b, J) float32         1 visible and inside the crop
  pose3d_cam     (b, J, 3) float32      metres, camera frame, root-relative (root = 0)
  pose3d_root    (b, 1, 3) float32      metres, root in the camera frame
  K_full         (b, 3, 3) float32      intrinsics of the full image, pixels
  crop_from_full (b, 3, 3) float32      full-image px -> crop px (flip mirror included)
  K_crop         (b, 3, 3) float32      kp2d_px ~ K_crop @ (pose3d_cam + pose3d_root), exactly
  dist           (b, 5) float32         full-image distortion (k1, k2, p1, p2, k3); 0 when none
  part_label_u8  (b, H, W) uint8        part labels in the crop (datasets with part masks and
                                        data.image.part_labels), 0 = background
  cam_R, cam_t   (b, 3, 3), (b, 3)      world -> camera, metres (mirrored with a flip)
  pose3d_world   (b, J, 3) float32      metres, world frame (no view axis)
  valid, owned   (b, 1) bool            scored / owned frame (T_out = 1); False on eval padding
  frame_idx      (b, 1) int32           frame index within the sequence
  seq_id         (b,) int32             `sequence_table` id of the (first) view's (take, camera);
                                        -1 on eval padding rows
  view_id        (b,) or (b, V) int32   camera index within the record (extra key)
  body_rotmat    (b, 24, 3, 3) float32  datasets with per-view bodies (deepmimic_smpl_render):
  body_betas     (b, 10) float32        local rotations (joint 0 in the camera frame), shape,
  body_transl    (b, 3) float32         camera-frame transl (metres), in the frame of pose3d_cam
  has_smpl       (b,) bool              (mirrored with a flip; `view_body`)

Training: one example per synchronised frame. Single view (V = 1): one view drawn uniformly per
example. Multi-view (V = data.image.views): V views of the same frame; for V = 2 on the four H36M
cameras the second view is a neighbour of the first (EpipolarPose's table, research/
epipolarpose.md §3: [[1, 2], [0, 3], [0, 3], [1, 2]], each with p = 0.5); for V equal to the
number of cameras all views in camera order; otherwise V distinct views at random. Each view gets
its own scale/rotation/colour/occlusion draw (`images.sample_augmentation`, data.image.*); a
flip (data.flip_aug, p = 0.5) mirrors all views of an example together, with the world and the
extrinsics mirrored consistently (`images.flip_extrinsics`). Randomness is grain's per-element
generator (seeded by data seed and the element's position), so batches are identical with any
number of workers, and the iterator state is the number of batches consumed
(`pipeline.TrainIterator`).
Evaluation: one row per (frame, camera), never augmented, always single-view (monocular
evaluation; also with data.image.views > 1); a sequence is (subject, action, camera) and T_out = 1,
so `jaxpose.eval.evaluator` reassembles and groups the rows unchanged. Padding as in `pipeline`.

Crops (data.image.crop): 'box' is EpipolarPose's (`images.pelvis_box` of data.image.bbox_mm around
the ground-truth root, `images.crop_matrix`). Other crops plug in with `register_crop(name, fn)`;
the flip mirror, the warp and the labels are the same for every crop. Crops that change the
view's 3D frame and K_crop make the whole view (`SAMPLE_CROPS`): 'perspective' and
'perspective_nopr' are PersPose's crop with and without the perspective rotation
(`perspective_crop.pipeline_view`; extra keys perspective_R (b, 3, 3), pe_valid (b,)).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import grain
import numpy as np

from jaxpose.data import bodies, build, images, perspective_crop, pipeline, sources
from jaxpose.geometry import skeleton

Example = dict[str, Any]

IMAGE_DEFAULTS = dict(
  size=256,
  views=1,
  crop='box',
  bbox_mm=2000.0,
  augment=True,
  scale_aug=0.25,
  rot_aug_deg=30.0,
  rot_prob=0.6,
  color_aug=0.2,
  occlusion=0.0,
  occluder_max=7,
  part_labels=True,
)
# EpipolarPose's view pairs of the four H36M cameras (0-based, camera order of H36M_CAMERA_IDS).
H36M_NEIGHBOURS = ((1, 2), (0, 3), (0, 3), (1, 2))


# ---------------------------------------------------------------------------------------------
# Config


def _get(data_cfg: Any, key: str) -> Any:
  return pipeline._get(data_cfg, key)


@dataclasses.dataclass(frozen=True)
class ImageSpec:
  """The image settings (data.image) plus what the pipeline needs from the data block."""

  size: int = 256
  views: int = 1
  crop: str = 'box'
  bbox_mm: float = 2000.0
  augment: bool = True
  scale_aug: float = 0.25
  rot_aug_deg: float = 30.0
  rot_prob: float = 0.6
  color_aug: float = 0.2
  occlusion: float = 0.0
  occluder_max: int = 7
  part_labels: bool = True
  flip_aug: bool = False
  layout: str = 'h36m17'
  root: int = 0


def image_spec(data_cfg: Any, layout: str) -> ImageSpec:
  """data.image (a ConfigDict, dict or absent) -> ImageSpec; unknown keys raise with the valid ones."""
  block = data_cfg.get('image', None) if isinstance(data_cfg, Mapping) else None
  if block is None and not isinstance(data_cfg, Mapping):
    block = getattr(data_cfg, 'image', None)
  block = dict(block or {})
  bad = sorted(set(block) - set(IMAGE_DEFAULTS))
  if bad:
    raise KeyError(f'unknown data.image keys {bad}; valid: {", ".join(IMAGE_DEFAULTS)}')
  vals = {**IMAGE_DEFAULTS, **block}
  spec = ImageSpec(
    **{k: type(IMAGE_DEFAULTS[k])(v) for k, v in vals.items()},
    flip_aug=bool(_get(data_cfg, 'flip_aug')),
    layout=layout,
    root=skeleton.get(layout).root,
  )
  if spec.size < 8 or spec.views < 1:
    raise ValueError(f'data.image.size must be >= 8 and views >= 1, got {spec.size}, {spec.views}')
  if spec.crop not in CROPS and spec.crop not in SAMPLE_CROPS:
    names = ', '.join([*CROPS, *SAMPLE_CROPS])
    raise ValueError(f'data.image.crop={spec.crop!r}; registered crops: {names}')
  return spec


@functools.lru_cache(maxsize=64)
def _kind(name: str, config: str, data_dir: str) -> str:
  return str(
    build.get_builder(name, config or None, data_dir).info.metadata.get('kind', 'sequence')
  )


def is_image_dataset(data_cfg: Any) -> bool:
  """Whether the configured dataset's metadata says kind == 'image' (works before it is built)."""
  name = _get(data_cfg, 'name')
  if name not in build.names():
    return False
  data_dir = build.resolve_data_dir(_get(data_cfg, 'data_dir'))
  return _kind(name, _get(data_cfg, 'config') or '', data_dir) == 'image'


# ---------------------------------------------------------------------------------------------
# Records


class FrameStore:
  """Random access to the frame records of one split, with the take/frame index.

  Attributes:
    name, config, split, data_dir: what the store reads.
    metadata: the dataset's info.metadata (kind, layout_3d, num_views, cameras, part_names, fps).
    takes: [{'take': k, 'subject', 'action', 'num_frames', 'cameras', 'records': (F,) record ids by
      frame_idx}], in first-seen order.
    record_take, record_frame: (N,) take index and frame index of every record.
  """

  def __init__(self, name: str, config: str | None, split: str, data_dir: str | None):
    self.name, self.config, self.split = name, config or '', split
    self.data_dir = build.resolve_data_dir(data_dir)
    self.ref = f'{build.dataset_ref(name, config)}:{split}'
    self._src = sources.open_source(name, config, split, self.data_dir)
    self.metadata = dict(build.get_builder(name, config, self.data_dir).info.metadata or {})
    self.num_views = int(self.metadata.get('num_views', 0))
    takes: dict[tuple[str, str], dict[str, Any]] = {}
    rt, rf = [], []
    for i in range(len(self._src)):
      ex = self._src[i]
      key = (_text(ex['subject']), _text(ex['action']))
      cams = tuple(_text(c) for c in ex['cameras'])
      nv = len(ex['images'])
      if self.num_views and nv != self.num_views or len(cams) != nv:
        raise ValueError(
          f'{self.ref} record {i} ({key[0]} {key[1]} frame {int(ex["frame_idx"])}): expected '
          f'{self.num_views} views (dataset metadata), got {nv} images and {len(cams)} cameras'
        )
      take = takes.setdefault(key, {'take': len(takes), 'cameras': cams, 'frames': {}})
      if cams != take['cameras']:
        raise ValueError(
          f"{self.ref} record {i}: cameras {cams} differ from the take's {take['cameras']}"
        )
      f = int(ex['frame_idx'])
      if f in take['frames']:
        raise ValueError(f'{self.ref}: {key[0]} {key[1]} frame {f} appears twice (record {i})')
      take['frames'][f] = i
      rt.append(take['take'])
      rf.append(f)
    self.takes = []
    for (subject, action), t in takes.items():
      frames = sorted(t['frames'])
      if frames != list(range(len(frames))):
        missing = sorted(set(range(frames[-1] + 1)) - set(frames))[:5]
        raise ValueError(f'{self.ref}: take {subject} {action} lacks frames {missing}')
      self.takes.append(
        {
          'take': t['take'],
          'subject': subject,
          'action': action,
          'num_frames': len(frames),
          'cameras': t['cameras'],
          'records': np.array([t['frames'][f] for f in frames], np.int64),
        }
      )
    self.record_take = np.array(rt, np.int64)
    self.record_frame = np.array(rf, np.int64)
    if not self.num_views and self.takes:
      self.num_views = len(self.takes[0]['cameras'])

  def __len__(self) -> int:
    return len(self.record_take)

  def __getstate__(self) -> dict[str, Any]:
    return {**self.__dict__, '_src': None}

  def read(self, i: int) -> Example:
    """Record i, decoded by TFDS (images still encoded)."""
    if self._src is None:
      self._src = sources.open_source(self.name, self.config, self.split, self.data_dir)
    return self._src[int(i)]

  def seq_id(self, take: int, view: int) -> int:
    """Sequence id of (take, camera): take * num_views + view."""
    return int(take) * self.num_views + int(view)

  def what(self, i: int, view: int | None = None) -> str:
    """Names a record (and view) in errors."""
    t = self.takes[int(self.record_take[i])]
    s = f'{self.ref} record {i} ({t["subject"]} {t["action"]} frame {int(self.record_frame[i])})'
    if view is not None:
      s += f' view {view} (camera {t["cameras"][view]})'
    return s


def _text(x: Any) -> str:
  x = x.item() if isinstance(x, np.ndarray) else x
  return x.decode('utf-8') if isinstance(x, bytes) else str(x)


_STORES: dict[tuple[str, str, str, str], FrameStore] = {}


def get_store(data_cfg: Any, split: str) -> FrameStore:
  """The process-wide FrameStore of the configured dataset and split."""
  name, config = _get(data_cfg, 'name'), _get(data_cfg, 'config') or ''
  key = (name, config, split, build.resolve_data_dir(_get(data_cfg, 'data_dir')))
  if key not in _STORES:
    _STORES[key] = FrameStore(name, config, split, key[3])
  return _STORES[key]


def clear_stores() -> None:
  """Drops the cached stores (tests; after rebuilding a dataset)."""
  _STORES.clear()


def _layout(data_cfg: Any, store: FrameStore) -> str:
  lay3 = store.metadata.get('layout_3d', _get(data_cfg, 'skeleton'))
  if _get(data_cfg, 'skeleton') != lay3:
    raise ValueError(
      f'data.skeleton={_get(data_cfg, "skeleton")!r} but dataset {store.ref} has layout '
      f'{lay3!r}; set data.skeleton={lay3!r}'
    )
  j = skeleton.get(lay3).num_joints
  if int(_get(data_cfg, 'num_joints')) != j:
    raise ValueError(
      f'data.num_joints={_get(data_cfg, "num_joints")} but dataset {store.ref} has {j} joints '
      f'({lay3}); set data.num_joints={j}'
    )
  return lay3


# ---------------------------------------------------------------------------------------------
# Crops


@dataclasses.dataclass(frozen=True)
class ViewData:
  """What a crop function sees of one view (full image, undistorted pinhole camera).

  Attributes:
    K: (3, 3) float64 intrinsics, pixels; dist: (5,) distortion.
    pose3d_cam: (J, 3) float64 metres, camera frame, absolute; root: root joint index.
    kp2d_px: (J, 2) float64 full-image pixels; kp2d_vis: (J,).
    width, height: image size, pixels.
  """

  K: np.ndarray
  dist: np.ndarray
  pose3d_cam: np.ndarray
  root: int
  kp2d_px: np.ndarray
  kp2d_vis: np.ndarray
  width: int
  height: int


CropFn = Callable[[ViewData, images.Augmentation, ImageSpec], np.ndarray]


def box_crop(view: ViewData, aug: images.Augmentation, spec: ImageSpec) -> np.ndarray:
  """EpipolarPose: the bbox_mm square around the root, scaled and rotated by the augmentation."""
  center, size = images.pelvis_box(view.pose3d_cam[view.root], view.K, spec.bbox_mm)
  return images.crop_matrix(center, size, spec.size, aug.scale, aug.rot_deg)


CROPS: dict[str, CropFn] = {'box': box_crop}


# Crops that make the whole view themselves because they change its 3D frame and K_crop
# (PersPose: 3D rotated by the perspective rotation, K_crop = crop_affine @ K):
# fn(view, image_rgb, part_mask, aug, spec, flip_perm, cam_R, cam_t) -> the per-view keys (plus
# the crop's extras, e.g. perspective_R, pe_valid), before occlusion and colour augmentation.
SAMPLE_CROPS: dict[str, Callable[..., Example]] = {
  'perspective': functools.partial(perspective_crop.pipeline_view, pr=True),
  'perspective_nopr': functools.partial(perspective_crop.pipeline_view, pr=False),
}


def register_crop(name: str, fn: CropFn) -> None:
  """Adds a crop: fn(view, augmentation, spec) -> (3, 3) crop_from_full without the flip mirror
  (an affine or a homography; e.g. PersPose's perspective rotation).

  The augmentation carries the EpipolarPose-recipe draws (scale, rot_deg) and `crop_seed`: a crop
  with its own random choices seeds `np.random.default_rng(aug.crop_seed)` (crop_seed is -1 at
  evaluation and with data.image.augment off, where it must be deterministic). The pipeline then
  applies the flip mirror, warps image and labels, and sets K_crop = crop_from_full @ K_full.
  """
  CROPS[name] = fn


# ---------------------------------------------------------------------------------------------
# Examples


def process_view(
  store: FrameStore,
  rec: Example,
  i: int,
  view: int,
  spec: ImageSpec,
  aug: images.Augmentation,
  flip: bool,
) -> Example:
  """One view of record i -> its crop and labels (the per-view keys of the module docstring)."""
  what = store.what(i, view)
  K = images.check_intrinsics(rec['K'][view], f'{what} K')
  pose = np.asarray(rec['pose3d_cam'][view], np.float64)
  data = ViewData(
    K=K,
    dist=np.asarray(rec['dist'][view], np.float64),
    pose3d_cam=pose,
    root=spec.root,
    kp2d_px=np.asarray(rec['kp2d_px'][view], np.float64),
    kp2d_vis=np.asarray(rec['kp2d_vis'][view], np.float64),
    width=int(rec['res_w'][view]),
    height=int(rec['res_h'][view]),
  )
  if spec.crop in SAMPLE_CROPS:
    return _sample_crop_view(store, rec, view, spec, aug, flip, data, what)
  m = CROPS[spec.crop](data, aug, spec)
  if flip:
    m = images.flip_matrix(spec.size) @ m
  full = images.decode_image(rec['images'][view], what)
  if full.shape[:2] != (data.height, data.width):
    raise images.ImageDecodeError(
      f'{what}: image is {full.shape[1]} x {full.shape[0]}, the record says '
      f'{data.width} x {data.height}'
    )
  crop = images.warp(full, m, spec.size)
  occ = None
  if aug.occlusion_seed >= 0:
    crop, occ = images.occlude(crop, aug.occlusion_seed, spec.occluder_max)
  crop = images.color_scale(crop, aug.color)
  perm = skeleton.get(spec.layout).flip_perm if flip else None
  out = images.crop_labels(
    data.kp2d_px, data.kp2d_vis, pose, K, m, spec.size, flip_perm=perm, root=spec.root
  )
  R, t = np.asarray(rec['R'][view], np.float64), np.asarray(rec['t'][view], np.float64)
  dist = data.dist
  if flip:
    R, t = images.FLIP_3D @ R @ images.FLIP_3D, t * (-1.0, 1.0, 1.0)
    dist = dist * (1.0, 1.0, 1.0, -1.0, 1.0)  # p2 multiplies x in (k1, k2, p1, p2, k3)
  out.update(
    image_u8=crop,
    K_full=K.astype(np.float32),
    crop_from_full=m.astype(np.float32),
    dist=dist.astype(np.float32),
    cam_R=R.astype(np.float32),
    cam_t=t.astype(np.float32),
    view_id=np.int32(view),
  )
  if 'body_rotmat' in rec:
    out.update(view_body(rec, view, flip))
  names = store.metadata.get('part_names')
  if spec.part_labels and names and len(rec['part_masks'][view]):
    mask = images.decode_mask(rec['part_masks'][view], f'{what} part mask')
    lab = images.warp(mask, m, spec.size, nearest=True)
    if flip:
      lab = images.flip_lut(names)[lab]
    if occ is not None:
      lab = np.where(occ, 0, lab).astype(np.uint8)
    out['part_label_u8'] = lab
  return out


def _sample_crop_view(store, rec, view, spec, aug, flip, data, what) -> Example:
  """`process_view` for a SAMPLE_CROPS crop: the crop makes the view, then occlusion and colour."""
  full = images.decode_image(rec['images'][view], what)
  mask = None
  names = store.metadata.get('part_names')
  if spec.part_labels and names and len(rec['part_masks'][view]):
    mask = images.decode_mask(rec['part_masks'][view], f'{what} part mask')
  perm = skeleton.get(spec.layout).flip_perm if flip else None
  out = SAMPLE_CROPS[spec.crop](
    data, full, mask, aug, spec, perm, np.asarray(rec['R'][view]), np.asarray(rec['t'][view])
  )
  crop = out['image_u8']
  if aug.occlusion_seed >= 0:
    crop, occ = images.occlude(crop, aug.occlusion_seed, spec.occluder_max)
    if 'part_label_u8' in out:
      out['part_label_u8'] = np.where(occ, 0, out['part_label_u8']).astype(np.uint8)
  out['image_u8'] = images.color_scale(crop, aug.color)
  out['view_id'] = np.int32(view)
  return out


def view_body(rec: Example, view: int, flip: bool) -> Example:
  """The body keys of one view of a record with per-view bodies (`deepmimic_smpl_render`).

  The body stays in the view's camera frame like pose3d_cam (the crop's scale and in-plane
  rotation live in K_crop); a flip mirrors it with `bodies.flip_rotmat` / `bodies.flip_transl`
  (exact for a mirror-symmetric model, whose rest root has x = 0), as pose3d_cam is mirrored.

  Returns:
    {'body_rotmat' (24, 3, 3), 'body_betas' (10,), 'body_transl' (3,) metres float32,
     'has_smpl' () bool}.
  """
  rot = np.asarray(rec['body_rotmat'][view], np.float32)
  transl = np.asarray(rec['body_transl'][view], np.float32)
  if flip:
    rot, transl = bodies.flip_rotmat(rot), bodies.flip_transl(transl)
  return {
    'body_rotmat': rot,
    'body_betas': np.asarray(rec['body_betas'], np.float32),
    'body_transl': transl,
    'has_smpl': np.bool_(np.asarray(rec['has_smpl'])[view]),
  }


def _world(rec: Example, spec: ImageSpec, flip: bool) -> np.ndarray:
  world = np.asarray(rec['pose3d_world'], np.float64)
  if flip:
    world = world[np.asarray(skeleton.get(spec.layout).flip_perm)] * (-1.0, 1.0, 1.0)
  return world.astype(np.float32)


def choose_views(
  rng: np.random.Generator, num_views: int, views: int, cameras: tuple[str, ...]
) -> list[int]:
  """Camera indices of a training example (see the module docstring)."""
  from jaxpose.geometry.camera import H36M_CAMERA_IDS

  if views > num_views:
    raise ValueError(f'data.image.views={views} but the dataset has {num_views} views')
  first = int(rng.integers(num_views))
  if views == 1:
    return [first]
  if views == num_views:
    return list(range(num_views))
  if views == 2 and tuple(cameras) == H36M_CAMERA_IDS:
    return [first, H36M_NEIGHBOURS[first][int(rng.integers(2))]]
  rest = [v for v in rng.permutation(num_views).tolist() if v != first]
  return [first, *rest[: views - 1]]


class TrainTransform:
  """grain random map: record id -> one training example (picklable, no decoded state)."""

  def __init__(self, store: FrameStore, spec: ImageSpec):
    self.store, self.spec = store, spec

  def __call__(self, i: int, rng: np.random.Generator) -> Example:
    s, store = self.spec, self.store
    i = int(i)
    rec = store.read(i)
    take = store.takes[int(store.record_take[i])]
    vs = choose_views(rng, store.num_views, s.views, take['cameras'])
    flip = s.flip_aug and bool(rng.random() < 0.5)
    per_view = []
    for v in vs:
      aug = images.NO_AUGMENTATION
      if s.augment:
        aug = images.sample_augmentation(
          rng, s.scale_aug, s.rot_aug_deg, s.rot_prob, s.color_aug, s.occlusion
        )
      per_view.append(process_view(store, rec, i, v, s, aug, flip))
    if s.views == 1:
      out = per_view[0]
    else:
      out = {k: np.stack([p[k] for p in per_view]) for k in per_view[0]}
    out.update(
      pose3d_world=_world(rec, s, flip),
      valid=np.ones(1, bool),
      owned=np.ones(1, bool),
      frame_idx=np.array([store.record_frame[i]], np.int32),
      seq_id=np.int32(store.seq_id(take['take'], vs[0])),
    )
    return out


def _prepare(data_cfg: Any, split: str) -> tuple[FrameStore, ImageSpec]:
  store = get_store(data_cfg, split)
  return store, image_spec(data_cfg, _layout(data_cfg, store))


def train_dataset(data_cfg: Any, *, seed: int, process_index: int = 0, process_count: int = 1):
  """The infinite MapDataset of per-host training batches (element i = this host's batch i)."""
  split = _get(data_cfg, 'train_split')
  store, spec = _prepare(data_cfg, split)
  if len(store) == 0:
    raise ValueError(f'split {split!r} of {store.ref} has no frames')
  b = pipeline._per_host(int(_get(data_cfg, 'batch_size')), process_count, 'batch_size')
  ds = grain.MapDataset.range(len(store)).seed(int(seed))
  ds = pipeline.EpochShuffle(ds, int(seed))[process_index::process_count]
  return ds.random_map(TrainTransform(store, spec)).batch(b, drop_remainder=True)


def train_iterator(
  data_cfg: Any, *, seed: int, process_index: int = 0, process_count: int = 1
) -> pipeline.TrainIterator:
  """A grain DatasetIterator of per-host training batches; get_state / set_state resume it.

  Args:
    data_cfg: the config's data block (configs/common.py `data_block`, with its `image` block).
    seed: shuffling and augmentation seed.
    process_index, process_count: this host and the number of hosts.
  """
  ds = train_dataset(data_cfg, seed=seed, process_index=process_index, process_count=process_count)
  return pipeline.TrainIterator(ds, int(_get(data_cfg, 'num_workers')), prefetch=4, seed=int(seed))


def _eval_rows(store: FrameStore) -> np.ndarray:
  """(N, 2) rows (record, view) of the evaluation: every frame of every camera, sequence-major."""
  rows = [
    np.stack([t['records'], np.full(t['num_frames'], v)], 1)
    for t in store.takes
    for v in range(store.num_views)
  ]
  return np.concatenate(rows) if rows else np.zeros((0, 2), np.int64)


def num_windows(data_cfg: Any, split: str | None = None) -> int:
  """Examples in a split: frames of data.train_split (one example per frame), else the number of
  evaluation rows (frames x cameras)."""
  split = split or _get(data_cfg, 'train_split')
  store = get_store(data_cfg, split)
  return len(store) if split == _get(data_cfg, 'train_split') else len(_eval_rows(store))


def sequence_table(data_cfg: Any, split: str | None = None) -> list[dict[str, Any]]:
  """[{seq_id, subject, action, camera, num_frames, source}] of a split: one per (take, camera)."""
  store = get_store(data_cfg, split or _get(data_cfg, 'eval_split'))
  return [
    {
      'seq_id': store.seq_id(t['take'], v),
      'subject': t['subject'],
      'action': t['action'],
      'camera': cam,
      'num_frames': t['num_frames'],
      'source': f'{store.ref} {t["subject"]}/{t["action"]}',
    }
    for t in store.takes
    for v, cam in enumerate(t['cameras'])
  ]


class EvalSource:
  """grain source over one host's evaluation rows: (record, view) or -1 for padding (a copy of the
  batch's first row with valid = owned = False and seq_id = -1)."""

  def __init__(self, store: FrameStore, spec: ImageSpec, rows: np.ndarray, slots: np.ndarray):
    self.store, self.spec, self.rows, self.slots = store, spec, rows, slots

  def __len__(self) -> int:
    return len(self.slots)

  def __getitem__(self, k: int) -> Example:
    j, pad = int(self.slots[k, 0]), bool(self.slots[k, 1])
    i, v = (int(x) for x in self.rows[j])
    rec = self.store.read(i)
    out = process_view(self.store, rec, i, v, self.spec, images.NO_AUGMENTATION, False)
    take = self.store.takes[int(self.store.record_take[i])]
    out.update(
      pose3d_world=_world(rec, self.spec, False),
      valid=np.full(1, not pad),
      owned=np.full(1, not pad),
      frame_idx=np.array([self.store.record_frame[i]], np.int32),
      seq_id=np.int32(-1 if pad else self.store.seq_id(take['take'], v)),
    )
    return out


def eval_batches(
  data_cfg: Any, split: str | None = None, *, process_index: int = 0, process_count: int = 1
) -> Iterator[Example]:
  """Per-host evaluation batches over every (frame, camera) of `split` (default data.eval_split).

  Every host yields the same number of batches of data.eval_batch_size // process_count rows;
  global batch i holds rows i * B .. (i + 1) * B - 1, host p the p-th slice of it. Rows past the
  last one are padding: a copy of the batch's first row with valid = owned = False, seq_id = -1.
  """
  split = split or _get(data_cfg, 'eval_split')
  store, spec = _prepare(data_cfg, split)
  rows = _eval_rows(store)
  if not len(rows):
    return
  big = int(_get(data_cfg, 'eval_batch_size'))
  b = pipeline._per_host(big, process_count, 'eval_batch_size')
  slots = []
  for n in range(-(-len(rows) // big)):
    lo = n * big + process_index * b
    real = list(range(lo, min(lo + b, len(rows))))
    first = real[0] if real else n * big
    slots += [(j, 0) for j in real] + [(first, 1)] * (b - len(real))
  src = EvalSource(store, spec, rows, np.array(slots, np.int64))
  ds = (
    grain.MapDataset.source(src)
    .batch(b)
    .to_iter_dataset(grain.ReadOptions(num_threads=2, prefetch_buffer_size=2))
  )
  yield from ds


def dataset_layouts(data_cfg: Any, split: str | None = None) -> tuple[str, str]:
  """(layout_2d, layout_3d) of the configured image dataset."""
  store = get_store(data_cfg, split or _get(data_cfg, 'eval_split'))
  lay3 = _layout(data_cfg, store)
  return store.metadata.get('layout_2d', lay3), lay3
