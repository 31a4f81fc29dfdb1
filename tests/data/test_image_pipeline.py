"""The image pipeline over deepmimic_render/tiny: batch contract, label consistency, resume, eval."""

import numpy as np
import pytest

from jaxpose import types
from jaxpose.data import deepmimic_render as dr
from jaxpose.data import image_pipeline, images, pipeline, windows
from jaxpose.geometry import skeleton

SK = skeleton.get('h36m17')
# Bones whose midpoint lies inside one body part: (parent, child, part name of the child's side).
LIMBS = (
  (1, 2, 'right_upper_leg'),
  (2, 3, 'right_lower_leg'),
  (4, 5, 'left_upper_leg'),
  (5, 6, 'left_lower_leg'),
  (11, 12, 'left_upper_arm'),
  (12, 13, 'left_lower_arm'),
  (14, 15, 'right_upper_arm'),
  (15, 16, 'right_lower_arm'),
  (0, 7, 'torso'),
)


@pytest.fixture
def cfg(render_dir):
  return dict(
    name='deepmimic_render',
    config='tiny',
    data_dir=str(render_dir),
    skeleton='h36m17',
    num_joints=17,
    batch_size=4,
    eval_batch_size=5,
    num_workers=0,
    flip_aug=True,
    image=dict(size=64, occlusion=0.5),
  )


def _batches(it, n):
  return [next(it) for _ in range(n)]


def _assert_same(a, b):
  assert len(a) == len(b)
  for x, y in zip(a, b):
    assert x.keys() == y.keys()
    for k in x:
      np.testing.assert_array_equal(x[k], y[k], err_msg=k)


def _check_geometry(b, atol_px=1e-3):
  """kp2d_px == K_crop @ (pose3d_cam + root); R world + t == camera 3D; root-relative 3D."""
  x = b['pose3d_cam'].astype(np.float64) + b['pose3d_root']
  np.testing.assert_allclose(images.project(b['K_crop'], x), b['kp2d_px'], atol=atol_px)
  np.testing.assert_array_equal(b['pose3d_cam'][..., 0, :], 0)
  world = b['pose3d_world'].astype(np.float64)
  if b['cam_R'].ndim == 4:  # multi-view: world (B, J, 3) shared by the views
    world = world[:, None]
  cam = world @ np.swapaxes(b['cam_R'], -1, -2) + b['cam_t'][..., None, :]
  np.testing.assert_allclose(cam, x, atol=1e-5)
  np.testing.assert_allclose(
    b['K_crop'], b['crop_from_full'] @ b['K_full'] @ _flip_of(b), atol=1e-3
  )


def _flip_of(b):
  """diag(+-1, 1, 1) per row: flipped rows have a mirrored crop (det of the 2x2 block < 0)."""
  det = np.linalg.det(b['crop_from_full'][..., :2, :2])
  d = np.zeros(det.shape + (3, 3))
  d[..., 0, 0] = np.sign(det)
  d[..., 1, 1] = d[..., 2, 2] = 1
  return d


def test_train_batch_contract(cfg):
  b = next(pipeline.train_iterator(cfg, seed=0))
  shapes = {k: (v.shape, v.dtype) for k, v in b.items()}
  f32 = np.float32
  assert shapes == {
    'image_u8': ((4, 64, 64, 3), np.uint8),
    'kp2d_px': ((4, 17, 2), f32),
    'kp2d_vis': ((4, 17), f32),
    'pose3d_cam': ((4, 17, 3), f32),
    'pose3d_root': ((4, 1, 3), f32),
    'K_full': ((4, 3, 3), f32),
    'crop_from_full': ((4, 3, 3), f32),
    'K_crop': ((4, 3, 3), f32),
    'dist': ((4, 5), f32),
    'part_label_u8': ((4, 64, 64), np.uint8),
    'cam_R': ((4, 3, 3), f32),
    'cam_t': ((4, 3), f32),
    'pose3d_world': ((4, 17, 3), f32),
    'valid': ((4, 1), bool),
    'owned': ((4, 1), bool),
    'frame_idx': ((4, 1), np.int32),
    'seq_id': ((4,), np.int32),
    'view_id': ((4,), np.int32),
  }
  assert b['valid'].all() and b['owned'].all()
  table = pipeline.sequence_table(cfg, 'train')
  for s, v in zip(b['seq_id'], b['view_id']):
    assert table[s]['camera'] == dr.views()[v].name


def test_labels_consistent_with_flip_rotation_and_scale(cfg):
  """Over many augmented examples (about half flipped, 60 % rotated)."""
  it = pipeline.train_iterator({**cfg, 'batch_size': 6}, seed=1)
  flips = rots = 0
  for b in _batches(it, 4):
    _check_geometry(b)
    det = np.linalg.det(b['crop_from_full'][:, :2, :2])
    flips += (det < 0).sum()
    off_axis = np.abs(b['crop_from_full'][:, 0, 1]) > 1e-6
    rots += off_axis.sum()
  assert 0 < flips < 24 and 0 < rots < 24


def _limb_labels(b, names):
  """(fraction of limb midpoints on their own part, on the other side's part, on background)."""
  swap = images.flip_lut(names)
  own = other = bg = total = 0
  for i in range(len(b['kp2d_px'])):
    for p, c, part in LIMBS:
      mid = np.round((b['kp2d_px'][i, p] + b['kp2d_px'][i, c]) / 2).astype(int)
      h, w = b['part_label_u8'].shape[1:]
      if 0 <= mid[0] < w and 0 <= mid[1] < h:
        got = b['part_label_u8'][i, mid[1], mid[0]]
        k = names.index(part)
        own += got == k
        other += got == swap[k] != k
        bg += got == 0
        total += 1
  return own / total, other / total, bg / total


@pytest.mark.parametrize('flip', [False, True])
def test_part_labels_follow_the_joints(cfg, flip):
  """Limb midpoints land on their own part's label, not on the mirrored side's (a flip must swap
  the L/R labels like the joints), and hardly ever on background. Self-occlusion (an arm behind
  the torso) accounts for the misses."""
  image = dict(size=96, occlusion=0.0, rot_prob=1.0)
  it = pipeline.train_iterator({**cfg, 'flip_aug': flip, 'batch_size': 6, 'image': image}, seed=2)
  b = next(it)
  if flip:
    assert (np.linalg.det(b['crop_from_full'][:, :2, :2]) < 0).sum() >= 2
  own, other, bg = _limb_labels(b, dr.PARTS)
  assert own > 0.6 and other < 0.15 and bg < 0.05, (own, other, bg)


def test_resume_gives_identical_batches(cfg):
  it = pipeline.train_iterator(cfg, seed=3)
  expect = _batches(it, 3)
  state = it.get_state()
  assert state == {'batches': 3, 'seed': 3}
  more = _batches(it, 2)
  fresh = pipeline.train_iterator(cfg, seed=3)
  fresh.set_state(state)
  _assert_same(more, _batches(fresh, 2))
  again = pipeline.train_iterator(cfg, seed=3)
  _assert_same(expect, _batches(again, 3))
  other = next(pipeline.train_iterator(cfg, seed=4))
  assert not np.array_equal(other['image_u8'], expect[0]['image_u8'])


def test_same_batches_with_a_worker_process(cfg):
  from absl import flags

  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()
  expect = _batches(pipeline.train_iterator(cfg, seed=5), 2)
  it = pipeline.train_iterator({**cfg, 'num_workers': 1}, seed=5)
  try:
    got = _batches(it, 2)
  finally:
    it.close()
  _assert_same(expect, got)


@pytest.mark.parametrize('hosts', [1, 2])
def test_eval_owns_every_frame_of_every_camera_once(cfg, hosts):
  cfg = {**cfg, 'eval_batch_size': 10}  # 12 rows: 2 global batches, 8 padding rows
  table = pipeline.sequence_table(cfg, 'test')
  assert [r['camera'] for r in table] == [v.name for v in dr.views()]
  assert pipeline.num_windows(cfg, 'test') == sum(r['num_frames'] for r in table)
  per_host = [
    list(pipeline.eval_batches(cfg, 'test', process_index=p, process_count=hosts))
    for p in range(hosts)
  ]
  assert len({len(h) for h in per_host}) == 1
  rows = {k: [] for k in ('frame_idx', 'owned', 'valid', 'seq_id')}
  for batches in per_host:
    for b in batches:
      assert b['image_u8'].shape == (10 // hosts, 64, 64, 3)
      assert b['valid'].shape == (len(b['seq_id']), 1)
      assert not b['owned'][b['seq_id'] < 0].any() and not b['valid'][b['seq_id'] < 0].any()
      _check_geometry(b)
      for k in rows:
        rows[k].append(b[k])
  cat = {k: np.concatenate(v) for k, v in rows.items()}
  nums = [r['num_frames'] for r in table]
  out = windows.reassemble(  # raises if a frame is owned twice
    cat['frame_idx'][:, :, None].astype(np.float64),
    cat['frame_idx'],
    cat['owned'],
    cat['seq_id'],
    nums,
  )
  assert sorted(out) == [r['seq_id'] for r in table]
  for s, arr in out.items():
    np.testing.assert_array_equal(arr[:, 0], np.arange(nums[s]))


def test_eval_rows_are_unaugmented_box_crops(cfg, render_dir):
  b = next(pipeline.eval_batches({**cfg, 'eval_batch_size': 4}, 'test'))
  store = image_pipeline.get_store(cfg, 'test')
  for i in range(4):
    t = store.takes[0]
    rec = store.read(t['records'][int(b['frame_idx'][i, 0])])
    v = int(b['view_id'][i])
    center, size = images.pelvis_box(rec['pose3d_cam'][v][0], rec['K'][v])
    np.testing.assert_allclose(
      b['crop_from_full'][i], images.crop_matrix(center, size, 64), rtol=1e-5
    )
    full = images.decode_image(rec['images'][v])
    np.testing.assert_array_equal(
      b['image_u8'][i], images.warp(full, images.crop_matrix(center, size, 64), 64)
    )


@pytest.mark.parametrize('views', [2, 4])
def test_multi_view_examples(cfg, views):
  b = next(
    pipeline.train_iterator({**cfg, 'batch_size': 8, 'image': dict(size=32, views=views)}, seed=6)
  )
  assert b['image_u8'].shape == (8, views, 32, 32, 3) and b['K_crop'].shape == (8, views, 3, 3)
  assert b['pose3d_world'].shape == (8, 17, 3) and b['view_id'].shape == (8, views)
  assert b['part_label_u8'].shape == (8, views, 32, 32)
  single = next(pipeline.train_iterator({**cfg, 'batch_size': 8, 'image': dict(size=32)}, seed=6))
  for k, v in b.items():
    extra = (views,) if k in types.IMAGE_PER_VIEW_KEYS else ()
    assert v.shape == single[k].shape[:1] + extra + single[k].shape[1:], k
  _check_geometry(b)
  if views == 2:
    for first, second in b['view_id']:
      assert second in image_pipeline.H36M_NEIGHBOURS[first]
  else:
    np.testing.assert_array_equal(b['view_id'], np.tile(np.arange(4), (8, 1)))
  # All views of an example are flipped together (the world is mirrored once).
  det = np.linalg.det(b['crop_from_full'][..., :2, :2])
  assert ((det < 0).all(1) | (det > 0).all(1)).all()


def test_dispatch_from_pipeline(cfg):
  assert image_pipeline.is_image_dataset(cfg)
  assert not image_pipeline.is_image_dataset({**cfg, 'name': 'deepmimic', 'config': ''})
  assert not image_pipeline.is_image_dataset({**cfg, 'name': 'h36m', 'config': 'gt'})
  assert pipeline.num_windows(cfg) == len(image_pipeline.get_store(cfg, 'train')) == 6
  assert pipeline.dataset_layouts(cfg) == ('h36m17', 'h36m17')
  assert 'image_u8' in next(pipeline.eval_batches(cfg))


def test_config_errors(cfg):
  with pytest.raises(KeyError, match=r"unknown data.image keys \['bogus'\]; valid: size"):
    pipeline.train_iterator({**cfg, 'image': dict(bogus=1)}, seed=0)
  with pytest.raises(ValueError, match="data.skeleton='mpi3dhp17'.*layout 'h36m17'"):
    pipeline.train_iterator({**cfg, 'skeleton': 'mpi3dhp17'}, seed=0)
  with pytest.raises(ValueError, match='registered crops: box'):
    pipeline.train_iterator({**cfg, 'image': dict(crop='nope')}, seed=0)
  with pytest.raises(ValueError, match='views=5 but the dataset has 4'):
    next(pipeline.train_iterator({**cfg, 'image': dict(views=5)}, seed=0))


def _bad_record(store, i, key, value):
  rec = dict(store.read(i))
  arr = np.array(rec[key], copy=True)
  arr[1] = value(arr[1])
  rec[key] = arr
  return rec


def test_bad_image_and_camera_errors_name_record_view_and_frame(cfg):
  store = image_pipeline.get_store(cfg, 'test')
  spec = image_pipeline.image_spec(cfg, 'h36m17')
  aug = images.NO_AUGMENTATION
  rec = _bad_record(store, 2, 'images', lambda b: b[: len(b) // 2])
  expect = r'deepmimic_render/tiny:test record 2 \(DM walk frame 2\) view 1 \(camera 55011271\)'
  with pytest.raises(images.ImageDecodeError, match=expect + ': truncated JPEG'):
    image_pipeline.process_view(store, rec, 2, 1, spec, aug, False)
  rec = _bad_record(store, 2, 'K', lambda k: np.zeros_like(k))
  with pytest.raises(images.CameraError, match=expect + ' K: intrinsics are not invertible'):
    image_pipeline.process_view(store, rec, 2, 1, spec, aug, False)


def test_register_crop_plugs_a_homography(cfg):
  """A registered projective crop flows through warp and labels (PersPose's entry point)."""

  seeds = []

  def tilted(view, aug, spec):
    seeds.append(aug.crop_seed)
    m = image_pipeline.box_crop(view, aug, spec)
    h = np.eye(3)
    h[2, :2] = [2e-4, -1e-4]
    h[2, 2] = 1 - h[2, :2] @ [spec.size / 2, spec.size / 2]
    return h @ m

  image_pipeline.register_crop('test_tilted', tilted)
  try:
    list(pipeline.eval_batches({**cfg, 'image': dict(size=64, crop='test_tilted')}))
    assert set(seeds) == {-1}  # nothing random at evaluation
    seeds.clear()
    b = next(pipeline.train_iterator({**cfg, 'image': dict(size=64, crop='test_tilted')}, seed=7))
    assert min(seeds) >= 0 and len(set(seeds)) == len(seeds) >= 4  # a seed per example (prefetch)
  finally:
    image_pipeline.CROPS.pop('test_tilted')
  assert np.abs(b['crop_from_full'][:, 2, :2]).max() > 0
  _check_geometry(b, atol_px=2e-3)


def test_evaluator_reassembles_image_rows_unchanged(cfg):
  """The host evaluator's scatter and coverage check accept image eval rows as they are."""
  evaluator = pytest.importorskip('jaxpose.eval.evaluator')
  cfg = {**cfg, 'eval_batch_size': 8}
  table = pipeline.sequence_table(cfg, 'test')
  errs = {'mpjpe_mm': {r['seq_id']: np.full(r['num_frames'], np.nan) for r in table}}
  covered = {r['seq_id']: np.zeros(r['num_frames'], np.int32) for r in table}
  for b in pipeline.eval_batches(cfg, 'test'):
    host = {k: b[k] for k in ('frame_idx', 'seq_id', 'valid', 'owned')}
    host['mpjpe_mm'] = 1000.0 * b['seq_id'][:, None] + b['frame_idx']  # identifies each row
    evaluator._scatter(errs, covered, host)
  per_seq = evaluator._check_coverage(errs, covered, table, complete=True)
  for r in table:
    expect = 1000.0 * r['seq_id'] + np.arange(r['num_frames'])
    np.testing.assert_array_equal(per_seq['mpjpe_mm'][r['seq_id']], expect)
