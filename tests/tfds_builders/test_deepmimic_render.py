"""The embedded deepmimic_render dataset: renderer, placing, records, determinism, no partial build."""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxpose.data import build, deepmimic, images, sources
from jaxpose.data import deepmimic_render as dr

REPO = pathlib.Path(__file__).resolve().parents[2]


def _build(data_dir, config='tiny'):
  tfds.disable_progress_bar()
  return build.build('deepmimic_render', config, data_dir=data_dir)


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
  """{split: [records]} of deepmimic_render/tiny and its version directory."""
  path = _build(tmp_path_factory.mktemp('render'))
  ref = build.dataset_ref('deepmimic_render', 'tiny')
  data_dir = path.parents[2]
  recs = {
    s: [dict(ex) for ex in tfds.data_source(ref, split=s, data_dir=str(data_dir))]
    for s in ('train', 'test')
  }
  return recs, path


# --- renderer -------------------------------------------------------------------------------------


def _rays(n=64):
  u = np.linspace(-0.3, 0.3, n)
  d = np.stack([*np.meshgrid(u, u), np.ones((n, n))], -1)
  return d / np.linalg.norm(d, axis=-1, keepdims=True)


def test_capsule_hits_match_analytic_geometry():
  rd = _rays()
  # Sphere at 5 m, radius 0.5: the central ray hits at 4.5 m; rays at angle a hit iff
  # sin(a) < r / 5; the silhouette is exactly that cone.
  centre = np.array([0.0, 0.0, 5.0])
  t = dr._hit_capsule(rd, centre, centre, 0.5)
  ang = np.arccos(rd[..., 2])
  np.testing.assert_array_equal(np.isfinite(t), np.sin(ang) < 0.1)
  d = 5 * np.cos(ang)  # distance along the ray to the closest point to the centre
  hit = np.isfinite(t)
  np.testing.assert_allclose(
    t[hit], (d - np.sqrt(np.maximum(0.25 - (5 * np.sin(ang)) ** 2, 0)))[hit], atol=1e-9
  )
  # A horizontal capsule from x = -1 to 1 at 4 m depth, radius 0.2: the ray straight ahead hits
  # the cylinder at 3.8 m; the one towards x = 1.1 hits the end sphere; x = 1.3 misses.
  a, b = np.array([-1.0, 0, 4]), np.array([1.0, 0, 4])
  rays = np.array([[0.0, 0, 1], [1.1, 0, 4], [1.3, 0, 4], [0, 0.25, 4]])
  rays /= np.linalg.norm(rays, axis=-1, keepdims=True)
  t = dr._hit_capsule(rays, a, b, 0.2)
  np.testing.assert_allclose(t[0], 3.8, atol=1e-12)
  assert np.isfinite(t[1]) and not np.isfinite(t[2]) and not np.isfinite(t[3])
  assert abs(np.linalg.norm(t[1] * rays[1] - b) - 0.2) < 1e-9


def test_z_buffer_keeps_the_nearest_part():
  """Render one frame; where the torso and an arm overlap, the label is the nearer one."""
  pts = dr.body_points(('walk',))['walk']
  view = dr.views(0.25)[0]
  frame = {k: v[0] for k, v in pts.items()}
  bg = np.zeros((view.height, view.width, 3), np.uint8)
  image, labels = dr.render_body(view, frame, bg)
  present = set(np.unique(labels).tolist())
  assert present >= {dr.part_index(p) for p in ('head', 'torso', 'left_lower_leg')}
  np.testing.assert_array_equal(image[labels == 0], 0)
  assert (image[labels > 0].max(axis=-1) > 0).all()
  # Move the right hand 30 cm in front of the chest (towards the camera): its label must win.
  cam_chest = dr.to_camera(view, frame['chest'])
  toward = -view.R.T @ (cam_chest / np.linalg.norm(cam_chest))
  moved = dict(frame)
  moved['right_wrist'] = frame['chest'] + 0.3 * toward
  moved['right_hand_tip'] = frame['chest'] + 0.36 * toward
  _, lab2 = dr.render_body(view, moved, bg)
  u, v = np.round(dr.project(view, moved['right_wrist'])).astype(int)
  assert lab2[v, u] == dr.part_index('right_hand')


def test_takes_are_in_frame_and_off_centre():
  pts = dr.body_points(tuple(deepmimic.CLIPS))
  cams = dr.views(1.0)
  off_centre, inside, frames = [], 0.0, 0
  for clip in deepmimic.CLIPS:
    world = pts[clip]['h36m17']
    off = dr.take_offset(clip, world, cams)
    assert off[2] == 0 and np.linalg.norm(off) <= dr.MAX_OFFSET + 1e-9
    frac = dr.in_frame_fraction(world + off, cams)
    # 'run' crosses 2.8 m and stays centred (offset 0); the others keep >= 98 % with an offset.
    assert frac.min() >= (0.98 if np.linalg.norm(off) else 0.9), clip
    inside += frac.mean() * len(world)
    frames += len(world)
    root = np.stack([dr.project(v, world[:, 0] + off) for v in cams])
    pp = np.stack([v.K[:2, 2] for v in cams])[:, None]
    off_centre.append(np.linalg.norm(root - pp, axis=-1).mean() / 1000)
  assert inside / frames > 0.99
  # Most takes put the subject well away from the principal point (> 8 % of the width on average).
  assert np.mean(np.array(off_centre) > 0.08) > 0.7


def test_body_points_match_the_deepmimic_poses():
  clips = ('walk', 'kick')
  pts = dr.body_points(clips)
  ref = deepmimic.clips_h36m17(clips)
  for c in clips:
    np.testing.assert_allclose(pts[c]['h36m17'], ref[c], atol=1e-9)
    np.testing.assert_allclose(pts[c]['root'], ref[c][:, 0], atol=1e-9)
    assert (pts[c]['head_centre'][:, 2] > pts[c]['neck'][:, 2]).all()


# --- records --------------------------------------------------------------------------------------


def test_metadata_and_splits(tiny):
  recs, path = tiny
  info = build.get_builder('deepmimic_render', 'tiny', str(path.parents[2])).info
  md = dict(info.metadata)
  assert md['kind'] == 'image' and md['num_views'] == 4 and md['layout_3d'] == 'h36m17'
  assert md['part_names'] == list(dr.PARTS) and md['cameras'] == [v.name for v in dr.views()]
  assert [len(recs[s]) for s in ('train', 'test')] == [6, 3]
  assert {sources._decode(r)['action'] for r in recs['test']} == {'walk'}
  assert 'tensorflow' not in sys.modules


def test_records_are_exact_projections(tiny):
  recs, _ = tiny
  clips = ('jump', 'kick', 'walk')
  ref = deepmimic.clips_h36m17(clips)
  for rec in recs['train'] + recs['test']:
    r = sources._decode(rec)
    w = rec['pose3d_world'].astype(np.float64)
    cam = w @ np.swapaxes(rec['R'], -1, -2) + rec['t'][:, None]
    np.testing.assert_allclose(rec['pose3d_cam'], cam, atol=1e-5)
    np.testing.assert_allclose(images.project(rec['K'], cam), rec['kp2d_px'], atol=1e-3)
    np.testing.assert_array_equal(rec['dist'], 0)
    np.testing.assert_allclose(np.linalg.det(rec['R']), 1, atol=1e-5)
    # The drawn pose is the mocap pose (50 Hz frame source_frame) moved by a horizontal offset.
    src = int(r['source'].rsplit(':', 1)[1])
    shift = w - ref[r['action']][src]
    np.testing.assert_allclose(shift, np.broadcast_to(shift[0], shift.shape), atol=1e-5)
    assert abs(shift[0, 2]) < 1e-6
    for v in range(4):
      img = images.decode_image(rec['images'][v], f'view {v}')
      lab = images.decode_mask(rec['part_masks'][v], f'mask {v}')
      assert img.shape == (rec['res_h'][v], rec['res_w'][v], 3) and lab.shape == img.shape[:2]
      assert lab.max() < len(dr.PARTS) and (lab > 0).mean() > 0.005
      # The pelvis and the thorax project onto the body.
      for j in (0, 8):
        u, vv = np.round(rec['kp2d_px'][v, j]).astype(int)
        assert lab[vv, u] > 0


def test_build_is_deterministic(tiny, tmp_path):
  """A second build in another process (other hash seed, cold caches) gives identical bytes."""
  _, first = tiny
  code = (
    'import tensorflow_datasets as tfds; from jaxpose.data import build; '
    f"tfds.disable_progress_bar(); build.build('deepmimic_render', 'tiny', data_dir={str(tmp_path)!r})"
  )
  env = {**os.environ, 'PYTHONHASHSEED': '12345', 'PYTHONPATH': str(REPO)}
  subprocess.run([sys.executable, '-c', code], env=env, check=True, capture_output=True)
  second = tmp_path / 'deepmimic_render' / 'tiny' / first.name
  files = sorted(p.name for p in first.glob('*.array_record*'))
  assert len(files) == 2
  for name in files:
    assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_failed_build_leaves_nothing(tmp_path, monkeypatch):
  calls = {'n': 0}
  real = dr.render_body

  def flaky(*args, **kwargs):
    calls['n'] += 1
    if calls['n'] > 9:
      raise RuntimeError('renderer crashed')
    return real(*args, **kwargs)

  monkeypatch.setattr(dr, 'render_body', flaky)
  with pytest.raises(RuntimeError, match='renderer crashed'):
    _build(tmp_path)
  assert not build.is_built('deepmimic_render', 'tiny', tmp_path)
  assert not list(tmp_path.rglob('dataset_info.json'))
  with pytest.raises(build.NotBuiltError, match='jaxpose data build deepmimic_render'):
    sources.open_source('deepmimic_render', 'tiny', 'train', tmp_path)


@pytest.mark.slow
def test_default_build_size_and_counts(tmp_path):
  """The full build (~45 s on 2 cores): frame counts at 12.5 fps and size under 100 MB."""
  path = _build(tmp_path, None)
  size = sum(p.stat().st_size for p in path.glob('*.array_record*'))
  assert size < 100e6
  splits = build.get_builder('deepmimic_render', None, str(tmp_path)).info.splits
  n50 = {c: len(v) for c, v in deepmimic.clips_h36m17().items()}
  count = lambda clips: sum(len(dr.frame_indices(n50[c], 12.5)) for c in clips)
  assert splits['train'].num_examples == count(deepmimic.TRAIN_CLIPS)
  assert splits['test'].num_examples == count(deepmimic.TEST_CLIPS)
