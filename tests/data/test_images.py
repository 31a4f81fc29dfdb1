"""jaxpose.data.images: codecs, crop matrices, warps, augmentation and label transforms."""

import cv2
import hypothesis.extra.numpy as hnp
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jaxpose.data import images
from jaxpose.geometry import skeleton
from tests.parity import _fixtures

PERM = skeleton.get('h36m17').flip_perm


def _rgb(h=40, w=60, seed=0):
  return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


# --- normalisation and codecs -------------------------------------------------------------------


def test_imagenet_normalize_numpy_and_jax():
  img = _rgb(4, 5)
  expect = (img.astype(np.float64) - [123.675, 116.28, 103.53]) / [58.395, 57.12, 57.375]
  out = images.imagenet_normalize(img)
  assert isinstance(out, np.ndarray) and out.dtype == np.float32
  np.testing.assert_allclose(out, expect, atol=1e-5)
  out_j = images.imagenet_normalize(jnp.asarray(img))
  assert isinstance(out_j, jnp.ndarray) and out_j.dtype == jnp.float32
  np.testing.assert_allclose(np.asarray(out_j), expect, atol=1e-5)
  with pytest.raises(ValueError, match=r'\(\.\.\., H, W, 3\)'):
    images.imagenet_normalize(img[..., :2])


def test_png_roundtrip_is_lossless_and_jpeg_close():
  img = _rgb()
  np.testing.assert_array_equal(images.decode_image(images.encode_png(img)), img)
  lab = (np.arange(40 * 60).reshape(40, 60) % 15).astype(np.uint8)
  np.testing.assert_array_equal(images.decode_mask(images.encode_png(lab)), lab)
  smooth = np.broadcast_to(np.linspace(0, 255, 60, dtype=np.uint8)[None, :, None], (40, 60, 3))
  dec = images.decode_image(images.encode_jpeg(np.ascontiguousarray(smooth), 95))
  assert dec.shape == (40, 60, 3) and np.abs(dec.astype(int) - smooth).max() <= 4


def test_decoded_channels_are_rgb():
  img = np.zeros((8, 8, 3), np.uint8)
  img[..., 0] = 200  # red
  dec = images.decode_image(images.encode_jpeg(img, 95))
  assert dec[..., 0].mean() > 150 and dec[..., 2].mean() < 50


@pytest.mark.parametrize(
  'data, pattern',
  [
    (b'', 'empty image bytes'),
    (b'not an image at all', 'expected JPEG or PNG'),
    ('jpeg_cut', 'truncated JPEG'),
    ('png_cut', 'truncated PNG'),
  ],
)
def test_decode_errors_name_the_image(data, pattern):
  if data == 'jpeg_cut':
    data = images.encode_jpeg(_rgb())[:-200]
  elif data == 'png_cut':
    data = images.encode_png(_rgb())[:-30]
  what = 'ds/cfg:test record 7 (DM walk frame 3) view 2 (camera 58860488)'
  with pytest.raises(images.ImageDecodeError) as e:
    images.decode_image(data, what)
  assert str(e.value).startswith(what) and pattern in str(e.value)


def test_decode_mask_rejects_colour_png():
  with pytest.raises(images.ImageDecodeError, match='single-channel'):
    images.decode_mask(images.encode_png(_rgb()), 'mask of view 1')


def test_check_intrinsics():
  K = np.array([[500.0, 0, 250], [0, 500, 250], [0, 0, 1]])
  np.testing.assert_array_equal(images.check_intrinsics(K, 'x'), K)
  for bad, msg in ((np.zeros((3, 3)), 'not invertible'), (K * [[1], [0], [1]], 'not invertible')):
    with pytest.raises(images.CameraError, match=f'record 3 view 1 K: intrinsics are {msg}'):
      images.check_intrinsics(bad, 'record 3 view 1 K')
  with pytest.raises(images.CameraError, match='NaN'):
    images.check_intrinsics(K * np.nan, 'K')
  with pytest.raises(images.CameraError, match=r'\(3, 3\)'):
    images.check_intrinsics(np.eye(4), 'K')


# --- crop matrices --------------------------------------------------------------------------------


def _three_point_cv2(c, size, out, scale, rot):
  """EpipolarPose's 3-point construction through cv2.getAffineTransform (independent path)."""
  a = np.deg2rad(rot)
  r = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
  w, h = size[0] * scale, size[1] * scale
  src = np.array([c, c + r @ [0, h / 2], c + r @ [w / 2, 0]], np.float32)
  dst = np.array([[out / 2, out / 2], [out / 2, out], [out, out / 2]], np.float32)
  return cv2.getAffineTransform(src, dst)


@given(
  cx=st.floats(0, 1000),
  cy=st.floats(0, 1000),
  w=st.floats(50, 800),
  h=st.floats(50, 800),
  scale=st.floats(0.75, 1.25),
  rot=st.floats(-60, 60),
)
def test_crop_matrix_matches_three_point_affine(cx, cy, w, h, scale, rot):
  m = images.crop_matrix((cx, cy), (w, h), 256, scale, rot)
  ref = _three_point_cv2(np.array([cx, cy]), (w, h), 256, scale, rot)
  np.testing.assert_array_equal(m[2], [0, 0, 1])
  # cv2 solves from float32 points: agree to float32 precision of the (<= 1000 px) coordinates.
  pts = np.array([[cx, cy], [0, 0], [1000, 1000], [cx + 50, cy - 70]])
  got, want = images.apply_h(m, pts), pts @ ref[:, :2].T + ref[:, 2]
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-2)  # cv2 solves in float32


def test_crop_matrix_maps_box_to_patch():
  m = images.crop_matrix((300, 200), (100, 50), (64, 32))
  corners = images.apply_h(m, np.array([[250, 175], [350, 225], [300, 200]]))
  np.testing.assert_allclose(corners, [[0, 0], [64, 32], [32, 16]], atol=1e-12)
  # Positive rotation turns the content counter-clockwise on screen: a point right of the centre
  # moves up (smaller y) in the patch.
  r = images.crop_matrix((300, 200), (100, 100), 100, rot_deg=30)
  assert images.apply_h(r, np.array([[340.0, 200.0]]))[0, 1] < 50


@pytest.mark.parametrize('path', _fixtures.fixture_files('epipolarpose', 'geometry*'))
def test_crop_labels_match_official_patch_labels(path):
  """Fixture (C): official get_batch_labels_from_global_coords for two views, (scale, rot) =
  (1, 0) and (1.1, 12 deg), of the iterative-LS triangulation (as `self_supervision` calls it):
  our pelvis box (checked on the ground truth), crop matrix and depth encoding reproduce them."""
  fx = _fixtures.Fixture(path)
  K = fx['input/K']
  world = fx['output/X_iterative_LS']  # mm
  # 256 px patch and 2000 mm depth range: constants of the official function, not settings.
  labels = fx['output/patch_labels'].reshape(len(fx['input/label_scale']), -1, 3)
  for v, cam in enumerate(('cam1', 'cam2')):
    R, T = fx[f'input/{cam}_R'], fx[f'input/{cam}_T'].reshape(3)
    x_cam_m = (world - T) @ R.T / 1000.0
    gt_root = (fx['input/X_world_gt'][0] - T) @ R.T / 1000.0
    center, size = images.pelvis_box(gt_root, K, 2000.0)
    np.testing.assert_allclose(
      center, [fx['input/label_center_x'][v], fx['input/label_center_y'][v]]
    )
    np.testing.assert_allclose(size, [fx['input/label_width'][v], fx['input/label_height'][v]])
    scale, rot = fx['input/label_scale'][v], fx['input/label_rot'][v]
    m = images.crop_matrix(center, size, 256, scale, rot)
    kp = images.apply_h(m, images.project(K, x_cam_m))
    z = (x_cam_m[:, 2] - x_cam_m[0, 2]) * 1000 / (2000 * scale) * 256
    ours = np.concatenate([kp / 256 - 0.5, z[:, None] / 256], axis=1)
    _fixtures.assert_parity(ours, labels[v], atol=1e-5, rtol_l2=1e-5, name=f'patch labels {v}')


# --- warps ----------------------------------------------------------------------------------------


def test_warp_integer_shift_is_a_slice():
  img = _rgb(50, 70)
  m = np.array([[1.0, 0, -10], [0, 1, -5], [0, 0, 1]])
  np.testing.assert_array_equal(images.warp(img, m, (30, 20)), img[5:25, 10:40])
  np.testing.assert_array_equal(
    images.warp(img[..., 0], m, (30, 20), nearest=True), img[5:25, 10:40, 0]
  )


def test_warp_flip_matrix_mirrors_the_crop():
  img = _rgb(32, 32)
  # flip_matrix mirrors about x = W / 2, i.e. x -> W - x: column j reads source column W - j.
  out = images.warp(img, images.flip_matrix(32), 32, nearest=True)
  np.testing.assert_array_equal(out[:, 1:], img[:, :0:-1])


@given(
  a=st.floats(-3.0, 3.0),
  b=st.floats(-3.0, 3.0),
  rot=st.floats(-45, 45),
  scale=st.floats(0.6, 1.6),
  projective=st.booleans(),
)
def test_warp_is_exact_on_a_linear_ramp(a, b, rot, scale, projective):
  """Bilinear interpolation reproduces a linear image exactly, so the warp must equal the ramp at
  the back-mapped points (up to OpenCV's 1/32-pixel fixed-point grid)."""
  yy, xx = np.mgrid[0:80, 0:80].astype(np.float32)
  ramp = (a * xx + b * yy).astype(np.float32) + 300
  m = images.crop_matrix((40, 40), (40, 40), 32, scale, rot)
  if projective:
    m = np.diag([1.0, 1.0, 1.0]) @ m
    m[2, :2] = [1e-4, -2e-4]
    m[2, 2] = 1 - m[2, :2] @ [40, 40]  # keeps the centre fixed
  out = images.warp(ramp, m, 32)
  q = np.stack(np.meshgrid(np.arange(32.0), np.arange(32.0)), -1).reshape(-1, 2)
  src = images.apply_h(np.linalg.inv(m), q)
  expect = (a * src[:, 0] + b * src[:, 1] + 300).reshape(32, 32)
  inside = ((src >= 1) & (src <= 78)).all(-1).reshape(32, 32)  # away from the zero border
  tol = (abs(a) + abs(b)) / 32 + 1e-3
  np.testing.assert_allclose(out[inside], expect[inside], atol=tol)
  assert inside.mean() > 0.5


# --- augmentation ---------------------------------------------------------------------------------


def test_sample_augmentation_follows_the_recipe():
  rng = np.random.default_rng(0)
  draws = [images.sample_augmentation(rng, occlusion=0.3) for _ in range(4000)]
  scale = np.array([d.scale for d in draws])
  rot = np.array([d.rot_deg for d in draws])
  color = np.array([d.color for d in draws])
  assert scale.min() >= 0.75 and scale.max() <= 1.25 and (scale == 0.75).any()
  assert np.abs(rot).max() <= 60 and abs((rot != 0).mean() - 0.6) < 0.03
  assert color.min() >= 0.8 and color.max() <= 1.2
  assert abs(np.mean([d.occlusion_seed >= 0 for d in draws]) - 0.3) < 0.03
  none = images.sample_augmentation(np.random.default_rng(0), 0, 0, 0.6, 0)
  assert (none.scale, none.rot_deg, none.color) == (1.0, 0.0, (1.0, 1.0, 1.0))


def test_color_scale_clips_and_rounds():
  img = np.array([[[100, 200, 250]]], np.uint8)
  np.testing.assert_array_equal(images.color_scale(img, (1.2, 1.2, 1.2)), [[[120, 240, 255]]])
  np.testing.assert_array_equal(images.color_scale(img, (0.805, 1.0, 0.5)), [[[80, 200, 125]]])


def test_occlusion_is_deterministic_and_local():
  img = _rgb(64, 64)
  a, ma = images.occlude(img, 123)
  b, mb = images.occlude(img, 123)
  np.testing.assert_array_equal(a, b)
  assert ma.any() and not ma.all()
  np.testing.assert_array_equal(a[~ma], img[~ma])
  c, mc = images.occlude(img, 124)
  assert not np.array_equal(ma, mc)


def test_flip_lut_swaps_left_and_right_by_name():
  names = ('background', 'head', 'left_hand', 'right_hand', 'left_foot', 'right_foot', 'torso')
  np.testing.assert_array_equal(images.flip_lut(names), [0, 1, 3, 2, 5, 4, 6])


# --- labels ---------------------------------------------------------------------------------------


def _scene(seed):
  rng = np.random.default_rng(seed)
  pose = rng.normal(0, 0.4, (17, 3)) + [
    rng.uniform(-1, 1),
    rng.uniform(-0.5, 0.5),
    rng.uniform(3, 7),
  ]
  f = rng.uniform(300, 1200)
  K = np.array([[f, 0, rng.uniform(200, 300)], [0, f * rng.uniform(0.98, 1.02), 250], [0, 0, 1]])
  return pose, K


@given(
  seed=st.integers(0, 10_000),
  scale=st.floats(0.75, 1.25),
  rot=st.floats(-60, 60),
  flip=st.booleans(),
  size=st.sampled_from([64, 256]),
)
def test_crop_labels_project_through_k_crop(seed, scale, rot, flip, size):
  """kp2d_px (through crop_from_full) == K_crop @ (pose3d_cam + pose3d_root), to 1e-3 px, with
  scale, rotation and flip; a flipped sample is the mirror of the unflipped one."""
  pose, K = _scene(seed)
  kp_full = images.project(K, pose)
  center, box = images.pelvis_box(pose[0], K)
  m = images.crop_matrix(center, box, size, scale, rot)
  if flip:
    m = images.flip_matrix(size) @ m
  out = images.crop_labels(kp_full, np.ones(17), pose, K, m, size, flip_perm=PERM if flip else None)
  x = out['pose3d_cam'].astype(np.float64) + out['pose3d_root']
  np.testing.assert_allclose(images.project(out['K_crop'], x), out['kp2d_px'], atol=1e-3)
  np.testing.assert_array_equal(out['pose3d_cam'][0], 0)
  assert out['K_crop'][0, 0] > 0  # the flip keeps a positive focal length
  if flip:
    unflipped = images.crop_labels(
      kp_full, np.ones(17), pose, K, np.linalg.inv(images.flip_matrix(size)) @ m, size
    )
    mirrored = unflipped['kp2d_px'][list(PERM)] * [-1, 1] + [size, 0]
    np.testing.assert_allclose(out['kp2d_px'], mirrored, atol=1e-3)
    np.testing.assert_allclose(
      out['pose3d_cam'], unflipped['pose3d_cam'][list(PERM)] * [-1, 1, 1], atol=1e-6
    )


def test_crop_labels_visibility_is_inside_the_crop():
  pose, K = _scene(3)
  kp = images.project(K, pose)
  m = images.crop_matrix(kp[0], (40, 40), 32)  # a tight crop: some joints fall outside
  vis = np.ones(17)
  vis[5] = 0
  out = images.crop_labels(kp, vis, pose, K, m, 32)
  inside = (out['kp2d_px'] >= 0).all(1) & (out['kp2d_px'] < 32).all(1)
  assert 0 < inside.sum() < 17
  np.testing.assert_array_equal(out['kp2d_vis'], inside * vis)


def test_flip_extrinsics_mirror_every_view_consistently():
  rng = np.random.default_rng(1)
  from jaxpose.geometry.rotation import axis_angle_to_matrix

  R = np.asarray(axis_angle_to_matrix(rng.normal(size=(4, 3))))
  t = rng.normal(size=(4, 3)) + [0, 0, 5]
  world = rng.normal(size=(17, 3))
  R2, t2, w2 = images.flip_extrinsics(R, t, world, PERM)
  np.testing.assert_allclose(np.linalg.det(R2), 1.0, atol=1e-9)
  cam = world @ np.swapaxes(R, -1, -2) + t[:, None]
  cam2 = w2 @ np.swapaxes(R2, -1, -2) + t2[:, None]
  np.testing.assert_allclose(cam2, cam[:, list(PERM)] * [-1, 1, 1], atol=1e-9)


@given(hnp.arrays(np.float64, (5, 2), elements=st.floats(-500, 500)))
def test_apply_h_inverse(pts):
  m = images.crop_matrix((100, 120), (200, 180), 256, 1.1, 17)
  m[2, :2] = [1e-5, 2e-5]
  back = images.apply_h(np.linalg.inv(m), images.apply_h(m, pts))
  np.testing.assert_allclose(back, pts, atol=1e-6)
