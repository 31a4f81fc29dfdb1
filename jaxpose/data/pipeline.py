"""The input pipeline the engine consumes: grain over windows of TFDS sequence records.

  it = train_iterator(config.data, seed=config.seed, process_index=p, process_count=n)
  batch = next(it)          # per-host batch: data.batch_size // n windows
  state = it.get_state()    # or grain.checkpoint.CheckpointSave(it) inside an Orbax checkpoint
  for batch in eval_batches(config.data, 'test', process_index=p, process_count=n): ...

Batches are dicts of numpy arrays (b windows, T input frames, T_out = T for seq2seq and 1 for
center, J2 / J3 the 2D / 3D joint counts):

  kp2d_norm      (b, T, J2, C_in) float32  normalised screen coordinates (x / w * 2 - [1, h / w]);
                                           C_in = 3 with data.use_conf (confidence appended)
  pose3d_cam     (b, T_out, J3, 3) float32 camera frame, root-relative (root = 0), metres (H36M
                                           `sh`: normalised image units, see scale_2_5d)
  pose3d_root    (b, T_out, 1, 3) float32  the root joint's camera-frame position (same unit), for
                                           reprojection losses and test-time optimisation
  valid          (b, T_out) bool   count this output frame in losses and metrics: a real frame (not
                                   edge padding, not a padding row) that the dataset marks usable
                                   (3DHP valid frames); in evaluation also owned
  owned          (b, T_out) bool   evaluation tiling: each frame of each sequence is owned by
                                   exactly one output (use it to reassemble or check coverage)
  frame_idx      (b, T_out) int32  frame index of each output within its sequence
  seq_id         (b,) int32        sequence id (`sequence_table`); -1 on eval padding rows
  scale_2_5d     (b, T_out) float32 metres per pose3d_cam unit (1.0 except H36M `sh`)
  cam_intrinsics (b, 9) float32    [fx, fy, cx, cy, k1, k2, k3, p1, p2] pixels (mirrored with flips)
  res_w, res_h   (b,) int32        image size, pixels
Datasets with SMPL-format bodies (deepmimic_smpl, pw3d; `jaxpose.data.bodies`) add, per output frame:
  body_rotmat    (b, T_out, 24, 3, 3) float32  local rotations, joint 0 in the camera frame
  body_betas     (b, T_out, 10) float32        shape
  body_transl    (b, T_out, 3) float32         camera-frame `transl`, metres
  has_smpl       (b, T_out) bool               the frame has body parameters
(flips mirror them too: `bodies.flip_body`).

Training: `grain.MapDataset` over the window index, globally shuffled with the seed (a new order
every epoch, `EpochShuffle`), repeated forever, split by host (`HostRows`: host p takes the p-th
contiguous slice of every global batch), batched and randomly flipped (data.flip_aug: each row
with probability 1/2, seeded per global batch index and row). The same seed gives the same global
batches, row for row, with any number of workers or processes; the iterator's state is the number
of batches consumed, so a restored iterator continues with the same batches (also after changing
data.num_workers).
Evaluation: the tiling of `windows.eval_windows`, split across hosts batch by batch and padded to
data.eval_batch_size // process_count rows per host (padding rows: valid = owned = False).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator, Mapping
from typing import Any

import grain
import numpy as np

from jaxpose.data import bodies, sources, transforms, windows
from jaxpose.data.transforms import flip_batch  # noqa: F401  (part of the pipeline API)
from jaxpose.data.windows import reassemble  # noqa: F401  (part of the pipeline API)
from jaxpose.geometry import skeleton

Example = dict[str, Any]
_DEFAULTS = dict(
  name='deepmimic',
  config='',
  data_dir='',
  train_split='train',
  eval_split='test',
  skeleton='h36m17',
  num_joints=17,
  frames=27,
  stride=27,
  mode='seq2seq',
  use_conf=True,
  flip_aug=True,
  batch_size=16,
  eval_batch_size=16,
  num_workers=0,
  fps=50.0,
  window_targets=False,
)


def _get(data_cfg: Any, key: str) -> Any:
  """Reads a data-config key from a ConfigDict, dict or object, with the schema's default."""
  if isinstance(data_cfg, Mapping):
    return data_cfg.get(key, _DEFAULTS[key])
  return getattr(data_cfg, key, _DEFAULTS[key])


def _images(data_cfg: Any):
  """`jaxpose.data.image_pipeline` when the dataset's metadata says kind == 'image', else None."""
  from jaxpose.data import image_pipeline

  return image_pipeline if image_pipeline.is_image_dataset(data_cfg) else None


@dataclasses.dataclass(frozen=True)
class Spec:
  """Everything the pipeline needs from the data config and the dataset's metadata: the dataset
  (name, config, data_dir, split), windows of `frames` frames every `stride` frames in `mode`
  ('seq2seq' or 'center'), `use_conf` (a confidence channel), `flip_aug`, the joint layouts of
  the 2D and 3D (skeleton names), the 3D root joint index, and `window_targets`."""

  name: str
  config: str
  data_dir: str
  split: str
  frames: int
  stride: int
  mode: str
  use_conf: bool
  flip_aug: bool
  layout_2d: str
  layout_3d: str
  root: int
  window_targets: bool = False


def _store(data_cfg: Any, split: str) -> sources.SequenceStore:
  return sources.get_store(
    _get(data_cfg, 'name'), _get(data_cfg, 'config'), split, _get(data_cfg, 'data_dir')
  )


def make_spec(data_cfg: Any, split: str, store: sources.SequenceStore | None = None) -> Spec:
  """Checks the config against the dataset (layout, joint count) and returns the Spec.

  Args:
    data_cfg: the config's data block (ConfigDict, dict or object).
    split: the split whose metadata is checked.
    store: the split's SequenceStore (opened when None).

  Raises:
    ValueError: data.skeleton or data.num_joints disagree with the built dataset.
  """
  store = store or _store(data_cfg, split)
  lay2 = store.metadata.get('layout_2d', _get(data_cfg, 'skeleton'))
  lay3 = store.metadata.get('layout_3d', _get(data_cfg, 'skeleton'))
  ref = f'{store.name}/{store.config or "default"}'
  if _get(data_cfg, 'skeleton') != lay3:
    raise ValueError(
      f'data.skeleton={_get(data_cfg, "skeleton")!r} but dataset {ref} has 3D '
      f'layout {lay3!r} (2D layout {lay2!r}); set data.skeleton={lay3!r}'
    )
  j2 = skeleton.get(lay2).num_joints
  if int(_get(data_cfg, 'num_joints')) != j2:
    raise ValueError(
      f'data.num_joints={_get(data_cfg, "num_joints")} but dataset {ref} has {j2} '
      f'input (2D) joints ({lay2}); set data.num_joints={j2}'
    )
  return Spec(
    name=store.name,
    config=store.config,
    data_dir=store.data_dir,
    split=split,
    frames=int(_get(data_cfg, 'frames')),
    stride=int(_get(data_cfg, 'stride')),
    mode=str(_get(data_cfg, 'mode')),
    use_conf=bool(_get(data_cfg, 'use_conf')),
    flip_aug=bool(_get(data_cfg, 'flip_aug')),
    layout_2d=lay2,
    layout_3d=lay3,
    root=skeleton.get(lay3).root,
    window_targets=bool(_get(data_cfg, 'window_targets')),
  )


class WindowSource:
  """grain RandomAccessDataSource: window i -> a finished (normalised, root-relative) example.

  Sequences are prepared once per process (`prepare_sequence`), so a window is a slice of cached
  arrays. Pickles without the cache (grain workers rebuild it).
  """

  def __init__(self, store: sources.SequenceStore, index: np.ndarray, spec: Spec, eval_mode: bool):
    self.store, self.index, self.spec, self.eval_mode = store, index, spec, eval_mode
    self._prepared: dict[int, Example] = {}

  def __len__(self) -> int:
    return len(self.index)

  def __repr__(self) -> str:
    return (
      f'WindowSource({self.store.name}/{self.store.config}:{self.store.split}, '
      f'{len(self)} windows, T={self.spec.frames}, {self.spec.mode})'
    )

  def __getstate__(self) -> dict[str, Any]:
    return {**self.__dict__, '_prepared': {}}

  def sequence(self, seq_id: int) -> Example:
    """The prepared whole sequence `seq_id` (`prepare_sequence`), cached in this process."""
    seq = self._prepared.get(seq_id)
    if seq is None:
      seq = self._prepared[seq_id] = prepare_sequence(
        self.store.read(seq_id, cache=False), self.spec
      )
    return seq

  def __getitem__(self, i: int) -> Example:
    seq_id, start, first_owned = (int(v) for v in self.index[int(i)])
    seq = self.sequence(seq_id)
    length, frames, mode = seq['num_frames'], self.spec.frames, self.spec.mode
    fidx, real, owned = windows.frame_info(start, first_owned, length, frames, mode)
    if mode == 'seq2seq' and start + frames <= length:
      sl_in = sl_out = slice(start, start + frames)  # the common case: views, no gather
    else:
      sl_in, sl_out = windows.input_indices(start, length, frames, mode), fidx
    ok = real & seq['valid'][sl_out]
    extra = {}
    if self.spec.window_targets and mode == 'center':
      extra['pose3d_cam_window'] = seq['pose3d_cam'][sl_in]
    for k in bodies.BODY_KEYS:
      if k in seq:
        extra[k] = seq[k][sl_out]
    return {
      **extra,
      'kp2d_norm': seq['kp2d_norm'][sl_in],
      'pose3d_cam': seq['pose3d_cam'][sl_out],
      'pose3d_root': seq['pose3d_root'][sl_out],
      'valid': ok & owned if self.eval_mode else ok,
      'owned': owned,
      'frame_idx': fidx,
      'seq_id': np.int32(seq_id),
      'scale_2_5d': seq['scale_2_5d'][sl_out],
      'cam_intrinsics': seq['cam_intrinsics'],
      'res_w': seq['res_w'],
      'res_h': seq['res_h'],
    }


def prepare_sequence(record: Example, spec: Spec) -> Example:
  """A decoded record -> whole-sequence model arrays (normalize_2d, add_confidence, root_relative).

  Returns:
    {'kp2d_norm' (L, J2, C_in) normalised screen coordinates (+ confidence),
     'pose3d_cam' (L, J3, 3) metres, camera frame, root-relative, 'pose3d_root' (L, 1, 3) metres,
     'valid' (L,) bool, 'scale_2_5d' (L,) metres per pose3d_cam unit, 'cam_intrinsics' (9,)
     pixels [fx, fy, cx, cy, k1, k2, k3, p1, p2], 'res_w', 'res_h' pixels, 'num_frames' L}
    plus, for datasets with bodies, `bodies.sequence_body(record)` (body_rotmat (L, 24, 3, 3), ...).
  """
  ex = {k: record[k] for k in ('kp2d_px', 'kp2d_conf', 'pose3d_cam', 'res_w', 'res_h')}
  ex = transforms.normalize_2d(ex)
  ex = transforms.add_confidence(ex, spec.use_conf)
  ex = transforms.root_relative(ex, spec.root)
  return {
    **ex,
    'valid': np.asarray(record['valid'], bool),
    'scale_2_5d': np.asarray(record['scale_2_5d'], np.float32),
    'cam_intrinsics': np.asarray(record['cam_intrinsics'], np.float32),
    'res_w': np.int32(record['res_w']),
    'res_h': np.int32(record['res_h']),
    'num_frames': int(record['num_frames']),
    **bodies.sequence_body(record),
  }


class _BatchFlip:
  """Picklable `(batch index, batch) -> batch` for grain's map_with_index: mirrors each row with
  p = 0.5. The coin of a window depends on its row in the global batch, not on the host: row r of
  host p's batch i is row p * b + r of global batch i (`HostRows`), whose coins are drawn from
  (seed, i). So 1 and N processes flip the same windows of the same global batch."""

  def __init__(self, spec: Spec, seed: int, process_index: int = 0, process_count: int = 1):
    self.spec, self.seed = spec, int(seed)
    self.process_index, self.process_count = int(process_index), int(process_count)

  def __call__(self, index: int, batch: Example) -> Example:
    b = len(batch['seq_id'])
    coins = np.random.default_rng([self.seed, 0x666C6970, int(index)]).random(
      b * self.process_count
    )
    sel = coins[self.process_index * b : (self.process_index + 1) * b] < 0.5
    if not sel.any():
      return batch
    keys = ('kp2d_norm', 'pose3d_cam', 'pose3d_root', 'cam_intrinsics')
    keys += tuple(k for k in ('pose3d_cam_window', 'body_rotmat', 'body_transl') if k in batch)
    rows = {k: batch[k][sel] for k in (*keys, 'res_w')}
    flipped = transforms.flip_batch(rows, self.spec.layout_2d, self.spec.layout_3d)
    out = dict(batch)
    for k in keys:
      out[k] = batch[k].copy()
      out[k][sel] = flipped[k]
    return out


class EpochShuffle(grain.MapDataset):
  """Infinite MapDataset: epoch e is `parent` in the order of a seeded permutation of epoch e.

  Does what grain's `shuffle().repeat(None)` does, but draws each epoch's permutation with numpy
  (O(n) once per epoch). grain 0.2.18's per-index Feistel shuffle costs ~1.7 ms per element on
  small datasets such as deepmimic (48 windows of 243 frames), which made it the bottleneck.
  """

  def __init__(self, parent: grain.MapDataset, seed: int):
    super().__init__(parent)
    self._seed, self._n, self._perms = int(seed), len(parent), {}

  def __len__(self) -> int:
    return sys.maxsize if self._n else 0

  def __str__(self) -> str:
    return f'EpochShuffle(seed={self._seed})'

  def _perm(self, epoch: int) -> np.ndarray:
    perm = self._perms.get(epoch)
    if perm is None:
      perm = np.random.default_rng([self._seed, epoch]).permutation(self._n)
      self._perms = {epoch: perm, **{e: p for e, p in self._perms.items() if e > epoch - 2}}
    return perm

  def __getitem__(self, index):
    if isinstance(index, slice):
      return self.slice(index)
    epoch, pos = divmod(int(index), self._n)
    return self._parent[int(self._perm(epoch)[pos])]


class HostRows(grain.MapDataset):
  """This host's rows of every global batch of an (infinite) MapDataset, in batch order.

  Element k is row r = k % b of global batch i = k // b on host p, i.e. `parent[i * b * n + p * b
  + r]` (b rows per host, n hosts). Batched by b, host p holds the p-th contiguous slice of each
  global batch, so the global array `make_array_from_process_local_data` assembles (hosts in
  process order) is exactly the one-process batch, row for row (dropout masks and other per-row
  randomness then match too).
  """

  def __init__(self, parent: grain.MapDataset, rows: int, process_index: int, process_count: int):
    super().__init__(parent)
    self._b, self._p, self._n = int(rows), int(process_index), int(process_count)

  def __len__(self) -> int:
    return len(self._parent) // self._n

  def __str__(self) -> str:
    return f'HostRows(rows={self._b}, process={self._p}/{self._n})'

  def __getitem__(self, index):
    if isinstance(index, slice):
      return self.slice(index)
    i, r = divmod(int(index), self._b)
    return self._parent[(i * self._n + self._p) * self._b + r]


def _per_host(global_batch: int, process_count: int, what: str) -> int:
  if global_batch % process_count:
    raise ValueError(
      f'data.{what}={global_batch} is not divisible by process_count={process_count}'
    )
  return global_batch // process_count


def _window_index(data_cfg: Any, split: str, train: bool) -> tuple[Spec, Any, np.ndarray]:
  store = _store(data_cfg, split)
  spec = make_spec(data_cfg, split, store)
  if train:
    index = windows.train_windows(store.lengths, spec.frames, spec.stride, spec.mode)
  else:
    index = windows.eval_windows(store.lengths, spec.frames, spec.mode)
  return spec, store, index


def train_dataset(data_cfg: Any, *, seed: int, process_index: int = 0, process_count: int = 1):
  """The infinite MapDataset of per-host training batches (element i = this host's batch i).

  Batches hold data.batch_size // process_count windows with the keys and shapes of the module
  docstring (kp2d_norm (b, T, J2, C_in), pose3d_cam (b, T_out, J3, 3) metres, ...); the order
  and the flips depend only on (seed, batch index).
  """
  split = _get(data_cfg, 'train_split')
  spec, store, index = _window_index(data_cfg, split, train=True)
  if len(index) == 0:
    raise ValueError(f'split {split!r} of {spec.name} has no training windows')
  b = _per_host(int(_get(data_cfg, 'batch_size')), process_count, 'batch_size')
  src = WindowSource(store, index, spec, eval_mode=False)
  ds = EpochShuffle(grain.MapDataset.source(src).seed(int(seed)), int(seed))
  ds = HostRows(ds, b, process_index, process_count).batch(b, drop_remainder=True)
  if spec.flip_aug:  # seeded per global batch index: worker- and process-count independent
    ds = ds.map_with_index(_BatchFlip(spec, seed, process_index, process_count))
  return ds


class TrainIterator(grain.DatasetIterator):
  """Iterator over `train_dataset` whose state is the number of batches consumed.

  Because the order and the augmentation depend only on (seed, batch index), the state
  {'batches': n} restores the same stream with any number of workers (grain's own multiprocess
  state can only be restored with the same worker count). Works with
  `grain.checkpoint.CheckpointSave` / `CheckpointRestore` (it is a grain DatasetIterator).
  """

  def __init__(self, dataset, num_workers: int, prefetch: int, seed: int):
    super().__init__()
    self._dataset, self._workers, self._prefetch, self._seed = dataset, num_workers, prefetch, seed
    self._batches = 0
    self._inner = None

  def _open(self):
    ds = self._dataset[self._batches :].to_iter_dataset(
      grain.ReadOptions(num_threads=2, prefetch_buffer_size=self._prefetch)
    )
    if self._workers > 0:
      ds = ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=self._workers))
    return iter(ds)

  def __next__(self) -> Example:
    if self._inner is None:
      self._inner = self._open()
    batch = next(self._inner)
    self._batches += 1
    return batch

  def get_state(self) -> dict[str, Any]:
    """{'batches': batches consumed, 'seed': the stream's seed}."""
    return {'batches': self._batches, 'seed': self._seed}

  def set_state(self, state: dict[str, Any]) -> None:
    """Continues after state['batches'] batches (ValueError if the seed differs)."""
    if int(state.get('seed', self._seed)) != self._seed:
      raise ValueError(
        f'data iterator state was saved with seed {state["seed"]}, this iterator '
        f'uses seed {self._seed}'
      )
    self.close()
    self._batches = int(state['batches'])

  def close(self) -> None:
    """Stops the underlying grain iterator (and its worker processes)."""
    if self._inner is not None and hasattr(self._inner, 'close'):
      self._inner.close()
    self._inner = None


def train_iterator(
  data_cfg: Any, *, seed: int, process_index: int = 0, process_count: int = 1
) -> TrainIterator:
  """A grain DatasetIterator of per-host training batches; get_state / set_state resume it.

  Args:
    data_cfg: the config's data block (configs/common.py `data_block`).
    seed: shuffling and augmentation seed.
    process_index, process_count: this host and the number of hosts.

  Returns:
    An iterator of per-host batch dicts (module docstring: kp2d_norm (b, T, J2, C_in) normalised
    screen coordinates, pose3d_cam (b, T_out, J3, 3) metres root-relative, valid (b, T_out), ...).
  """
  if ip := _images(data_cfg):
    return ip.train_iterator(
      data_cfg, seed=seed, process_index=process_index, process_count=process_count
    )
  ds = train_dataset(data_cfg, seed=seed, process_index=process_index, process_count=process_count)
  return TrainIterator(ds, int(_get(data_cfg, 'num_workers')), prefetch=4, seed=int(seed))


def num_windows(data_cfg: Any, split: str | None = None) -> int:
  """Number of windows in a split (count): training windows for data.train_split, else the
  evaluation tiling's windows."""
  if ip := _images(data_cfg):
    return ip.num_windows(data_cfg, split)
  split = split or _get(data_cfg, 'train_split')
  return len(_window_index(data_cfg, split, train=split == _get(data_cfg, 'train_split'))[2])


def sequence_table(data_cfg: Any, split: str | None = None) -> list[dict[str, Any]]:
  """[{seq_id, subject, action, camera, num_frames (frames), source}] of a split (default
  data.eval_split), by seq_id."""
  if ip := _images(data_cfg):
    return ip.sequence_table(data_cfg, split)
  store = _store(data_cfg, split or _get(data_cfg, 'eval_split'))
  keys = ('seq_id', 'subject', 'action', 'camera', 'num_frames', 'source')
  return [{k: m[k] for k in keys} for m in store.meta]


def _stack(examples: list[Example]) -> Example:
  return {k: np.stack([e[k] for e in examples]) for k in examples[0]}


def eval_batches(
  data_cfg: Any, split: str | None = None, *, process_index: int = 0, process_count: int = 1
) -> Iterator[Example]:
  """Per-host evaluation batches tiling every sequence of `split` (default data.eval_split).

  Every host yields the same number of batches of data.eval_batch_size // process_count rows;
  global batch i holds windows i * B .. (i + 1) * B - 1, host p the p-th slice of it. Rows past the
  last window are padding: a copy of the batch's first window with valid = owned = False and
  seq_id = -1. Batches have the keys and shapes of the module docstring (kp2d_norm
  (b, T, J2, C_in), pose3d_cam (b, T_out, J3, 3) metres, valid/owned (b, T_out) bool, frame_idx
  (b, T_out) int32, seq_id (b,) int32, ...), b = data.eval_batch_size // process_count.
  """
  if ip := _images(data_cfg):
    yield from ip.eval_batches(
      data_cfg, split, process_index=process_index, process_count=process_count
    )
    return
  split = split or _get(data_cfg, 'eval_split')
  spec, store, index = _window_index(data_cfg, split, train=False)
  big = int(_get(data_cfg, 'eval_batch_size'))
  b = _per_host(big, process_count, 'eval_batch_size')
  src = WindowSource(store, index, spec, eval_mode=True)
  n_batches = -(-len(index) // big)
  for i in range(n_batches):
    lo = i * big + process_index * b
    rows = [src[j] for j in range(lo, min(lo + b, len(index)))]
    template = rows[0] if rows else src[0]
    while len(rows) < b:
      pad = dict(template)
      pad['valid'] = np.zeros_like(template['valid'])
      pad['owned'] = np.zeros_like(template['owned'])
      pad['seq_id'] = np.int32(-1)
      rows.append(pad)
    yield _stack(rows)


def dataset_layouts(data_cfg: Any, split: str | None = None) -> tuple[str, str]:
  """(layout_2d, layout_3d): the skeleton names of the configured dataset's 2D and 3D joints
  (e.g. for `flip_batch`)."""
  if ip := _images(data_cfg):
    return ip.dataset_layouts(data_cfg, split)
  spec = make_spec(data_cfg, split or _get(data_cfg, 'eval_split'))
  return spec.layout_2d, spec.layout_3d
