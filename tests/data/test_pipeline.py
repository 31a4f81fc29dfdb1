"""The grain pipeline the engine consumes: batches, determinism, resume, sharding, eval tiling."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxpose.data import build, pipeline, sources
from jaxpose.geometry import camera, skeleton


def _batches(it, n):
  return [next(it) for _ in range(n)]


def _assert_same(a, b):
  assert len(a) == len(b)
  for x, y in zip(a, b):
    assert x.keys() == y.keys()
    for k in x:
      np.testing.assert_array_equal(x[k], y[k], err_msg=k)


def test_train_batch_contract(cfg):
  it = pipeline.train_iterator(cfg, seed=0)
  b = next(it)
  shapes = {k: v.shape for k, v in b.items()}
  assert shapes['kp2d_norm'] == (8, 9, 17, 3) and shapes['pose3d_cam'] == (8, 9, 17, 3)
  for k in ('valid', 'owned', 'frame_idx', 'scale_2_5d'):
    assert shapes[k] == (8, 9), k
  assert shapes['seq_id'] == shapes['res_w'] == (8,) and shapes['cam_intrinsics'] == (8, 9)
  assert b['frame_idx'].dtype == np.int32 and b['seq_id'].dtype == np.int32
  assert b['valid'].dtype == bool and b['kp2d_norm'].dtype == np.float32
  np.testing.assert_array_equal(b['pose3d_cam'][:, :, 0], 0)  # root-relative
  assert np.abs(b['kp2d_norm'][..., 0]).max() <= 1.0


def test_windows_hold_the_right_frames(cfg, data_dir):
  """Unflipped windows equal the normalised record at their frame indices."""
  it = pipeline.train_iterator({**cfg, 'flip_aug': False}, seed=1)
  store = sources.get_store('h36m', 'gt', 'train', str(data_dir))
  for b in _batches(it, 3):
    for i in range(len(b['seq_id'])):
      rec = store[int(b['seq_id'][i])]
      f = b['frame_idx'][i]
      norm = camera.normalize_screen_coordinates(
        rec['kp2d_px'][f], float(rec['res_w']), float(rec['res_h'])
      )
      np.testing.assert_allclose(b['kp2d_norm'][i, :, :, :2], norm, atol=1e-6)
      rel = skeleton.root_relative(rec['pose3d_cam'][f], 0)
      np.testing.assert_allclose(b['pose3d_cam'][i], rel, atol=1e-6)
      np.testing.assert_array_equal(b['kp2d_norm'][i, :, :, 2], rec['kp2d_conf'][f])


def test_flip_aug_mirrors_whole_rows(cfg):
  plain = next(pipeline.train_iterator({**cfg, 'flip_aug': False}, seed=2))
  aug = next(pipeline.train_iterator(cfg, seed=2))
  np.testing.assert_array_equal(plain['frame_idx'], aug['frame_idx'])
  perm = list(skeleton.get('h36m17').flip_perm)
  flipped = 0
  for i in range(len(plain['seq_id'])):
    if np.array_equal(plain['kp2d_norm'][i], aug['kp2d_norm'][i]):
      np.testing.assert_array_equal(plain['pose3d_cam'][i], aug['pose3d_cam'][i])
      continue
    flipped += 1
    np.testing.assert_allclose(aug['kp2d_norm'][i][:, perm, 0], -plain['kp2d_norm'][i][..., 0])
    np.testing.assert_allclose(aug['pose3d_cam'][i][:, perm, 0], -plain['pose3d_cam'][i][..., 0])
    assert aug['cam_intrinsics'][i, 2] == aug['res_w'][i] - plain['cam_intrinsics'][i, 2]
  assert 0 < flipped < len(plain['seq_id'])


def test_seed_determinism_and_epochs(cfg):
  a = _batches(pipeline.train_iterator(cfg, seed=5), 4)
  _assert_same(a, _batches(pipeline.train_iterator(cfg, seed=5), 4))
  c = _batches(pipeline.train_iterator(cfg, seed=6), 1)
  assert not np.array_equal(a[0]['kp2d_norm'], c[0]['kp2d_norm'])
  # One epoch visits every window once, and the next epoch uses a new order.
  n = pipeline.num_windows(cfg, 'train')
  small = {**cfg, 'batch_size': 1, 'flip_aug': False}
  it = pipeline.train_iterator(small, seed=0)
  ids = [(int(b['seq_id'][0]), int(b['frame_idx'][0, 0])) for b in _batches(it, 2 * n)]
  assert len(set(ids[:n])) == n and set(ids[:n]) == set(ids[n:]) and ids[:n] != ids[n:]


def test_resume_from_saved_state(cfg):
  it = pipeline.train_iterator(cfg, seed=3)
  _batches(it, 3)
  state = it.get_state()
  expect = _batches(it, 3)
  fresh = pipeline.train_iterator(cfg, seed=3)
  fresh.set_state(state)
  _assert_same(expect, _batches(fresh, 3))


def test_same_batches_with_a_worker_process(cfg):
  from absl import flags

  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()
  expect = _batches(pipeline.train_iterator(cfg, seed=4), 3)
  it = pipeline.train_iterator({**cfg, 'num_workers': 1}, seed=4)
  try:
    got = _batches(it, 2)
    state = it.get_state()
    got.append(next(it))
  finally:
    it.close()
  _assert_same(expect, got)
  resumed = pipeline.train_iterator(cfg, seed=4)  # a worker-process state restores in-process
  resumed.set_state(state)
  _assert_same(expect[2:], _batches(resumed, 1))


def test_hosts_split_the_global_batch(cfg):
  cfg = {**cfg, 'flip_aug': False}
  whole = next(pipeline.train_iterator(cfg, seed=7))
  parts = [
    next(pipeline.train_iterator(cfg, seed=7, process_index=p, process_count=2)) for p in range(2)
  ]
  assert all(len(p['seq_id']) == 4 for p in parts)
  key = lambda b: sorted(zip(b['seq_id'].tolist(), b['frame_idx'][:, 0].tolist()))
  assert key(whole) == sorted(key(parts[0]) + key(parts[1]))
  with pytest.raises(ValueError, match='not divisible by process_count=3'):
    pipeline.train_iterator(cfg, seed=0, process_index=0, process_count=3)


@pytest.mark.parametrize('mode,frames', [('seq2seq', 9), ('seq2seq', 64), ('center', 5)])
@pytest.mark.parametrize('hosts', [1, 2])
def test_eval_tiles_every_frame_once(cfg, mode, frames, hosts):
  cfg = {**cfg, 'mode': mode, 'frames': frames}
  table = pipeline.sequence_table(cfg, 'test')
  lengths = {r['seq_id']: r['num_frames'] for r in table}
  counts = {s: np.zeros(n, int) for s, n in lengths.items()}
  per_host = [
    list(pipeline.eval_batches(cfg, 'test', process_index=p, process_count=hosts))
    for p in range(hosts)
  ]
  assert len({len(x) for x in per_host}) == 1  # every host runs the same number of steps
  t_out = frames if mode == 'seq2seq' else 1
  for batches in per_host:
    for b in batches:
      assert b['kp2d_norm'].shape == (8 // hosts, frames, 17, 3)
      assert b['pose3d_cam'].shape == (8 // hosts, t_out, 17, 3)
      assert b['owned'].shape == b['valid'].shape == b['frame_idx'].shape == (8 // hosts, t_out)
      pad = b['seq_id'] < 0
      assert not b['owned'][pad].any() and not b['valid'][pad].any()
      for i in np.flatnonzero(~pad):
        np.add.at(counts[int(b['seq_id'][i])], b['frame_idx'][i][b['owned'][i]], 1)
  assert all((c == 1).all() for c in counts.values())


def test_eval_reassembles_the_sequences(cfg, data_dir):
  batches = list(pipeline.eval_batches(cfg, 'test'))
  cat = {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}
  table = pipeline.sequence_table(cfg, 'test')
  out = pipeline.reassemble(
    cat['pose3d_cam'],
    cat['frame_idx'],
    cat['owned'],
    cat['seq_id'],
    [r['num_frames'] for r in table],
  )
  store = sources.get_store('h36m', 'gt', 'test', str(data_dir))
  assert sorted(out) == [r['seq_id'] for r in table]
  for s, pose in out.items():
    np.testing.assert_allclose(pose, skeleton.root_relative(store[s]['pose3d_cam'], 0), atol=1e-6)
  assert {r['subject'] for r in table} == {'S9', 'S11'}


def test_3dhp_valid_mask_and_root(data_dir):
  cfg = dict(
    name='mpi_inf_3dhp',
    data_dir=str(data_dir),
    frames=7,
    skeleton='mpi3dhp17',
    num_joints=17,
    eval_batch_size=4,
    batch_size=4,
  )
  store = sources.get_store('mpi_inf_3dhp', '', 'test', str(data_dir))
  valid = 0
  for b in pipeline.eval_batches(cfg):
    np.testing.assert_array_equal(b['pose3d_cam'][..., 14, :], 0)  # root 14 (pelvis)
    assert not (b['valid'] & ~b['owned']).any()
    for i in np.flatnonzero(b['seq_id'] >= 0):
      rec = store[int(b['seq_id'][i])]
      np.testing.assert_array_equal(b['valid'][i], b['owned'][i] & rec['valid'][b['frame_idx'][i]])
    valid += int(b['valid'].sum())
  assert valid == sum(int(store[i]['valid'].sum()) for i in range(len(store)))


def test_sh_scale_reaches_the_batches(data_dir):
  cfg = dict(name='h36m', config='sh', data_dir=str(data_dir), frames=9, eval_batch_size=4)
  b = next(pipeline.eval_batches(cfg))
  assert b['scale_2_5d'].shape == (4, 9) and (b['scale_2_5d'][b['valid']] > 1e-3).all()


def test_config_and_build_errors(cfg, tmp_path):
  with pytest.raises(ValueError, match=r"data.skeleton='mpi3dhp17' .* set data.skeleton='h36m17'"):
    pipeline.train_iterator({**cfg, 'skeleton': 'mpi3dhp17'}, seed=0)
  with pytest.raises(ValueError, match='set data.num_joints=17'):
    pipeline.num_windows({**cfg, 'num_joints': 16})
  with pytest.raises(
    build.NotBuiltError, match=r'jaxpose data build h36m --config gt --manual_dir'
  ):
    pipeline.train_iterator({**cfg, 'data_dir': str(tmp_path)}, seed=0)
  with pytest.raises(ValueError, match='has no split'):
    pipeline.sequence_table(cfg, 'validation')


def test_deepmimic_is_built_on_first_use(tmp_path):
  tfds.disable_progress_bar()
  build.ensure_built('deepmimic', tmp_path)
  cfg = dict(name='deepmimic', data_dir=str(tmp_path), frames=27, stride=9, batch_size=4)
  assert next(pipeline.train_iterator(cfg, seed=0))['kp2d_norm'].shape == (4, 27, 17, 3)
  assert {r['action'] for r in pipeline.sequence_table(cfg, 'test')} == {
    'cartwheel',
    'punch',
    'walk',
  }


def test_grain_checkpoint_handler_round_trip(cfg, tmp_path):
  import grain
  from etils import epath

  it = pipeline.train_iterator(cfg, seed=8)
  _batches(it, 2)
  handler = grain.checkpoint.CheckpointHandler()
  handler.save(epath.Path(tmp_path), args=grain.checkpoint.CheckpointSave(it))
  expect = _batches(it, 2)
  fresh = pipeline.train_iterator(cfg, seed=8)
  handler.restore(epath.Path(tmp_path), args=grain.checkpoint.CheckpointRestore(fresh))
  _assert_same(expect, _batches(fresh, 2))
  with pytest.raises(ValueError, match='seed 8'):
    pipeline.train_iterator(cfg, seed=9).set_state(it.get_state())
