"""EpipolarPose method functions: the loss, decoding round trips and the crop/label encoding."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxpose.methods import epipolarpose as ep


def _rng(seed=0):
  return np.random.default_rng(seed)


def test_smooth_l1_is_huber_with_beta_one():
  d = np.array([-3.0, -1.0, -0.999, -0.3, 0.0, 0.5, 0.999, 1.0, 2.5], np.float32)
  ref = np.where(np.abs(d) < 1, 0.5 * d**2, np.abs(d) - 0.5)
  np.testing.assert_allclose(ep.smooth_l1(jnp.asarray(d)), ref, rtol=1e-6)
  torch = pytest.importorskip('torch')
  t = torch.nn.functional.smooth_l1_loss(
    torch.from_numpy(d), torch.zeros(len(d)), reduction='none', beta=0.5
  )
  np.testing.assert_allclose(ep.smooth_l1(jnp.asarray(d), beta=0.5), t.numpy(), rtol=1e-6)


def test_loss_is_weighted_sum_over_batch_size():
  rng = _rng(1)
  pred, label = rng.uniform(-2, 2, (2, 4, 5, 3)).astype(np.float32)
  weight = (rng.uniform(size=(4, 5, 3)) > 0.3).astype(np.float32)
  per = ep.joint_location_loss_per_sample(pred, label, weight)
  d = np.abs(pred - label)
  elem = np.where(d < 1, 0.5 * d**2, d - 0.5) * weight
  np.testing.assert_allclose(per, elem.sum((1, 2)), rtol=1e-5)
  np.testing.assert_allclose(ep.joint_location_loss(pred, label, weight), elem.sum() / 4, rtol=1e-5)
  # Flattened (B, 3J) inputs, as the official code passes them, give the same per-sample loss.
  flat = ep.joint_location_loss_per_sample(*(a.reshape(4, -1) for a in (pred, label, weight)))
  np.testing.assert_allclose(flat, per, rtol=1e-6)


def test_crop_affine_maps_the_three_official_points():
  centre, size, scale, rot = np.array([400.0, 520.0]), np.array([300.0, 260.0]), 1.2, 25.0
  a = ep._crop_affine(centre, size, 256, scale, rot)
  r = np.deg2rad(rot)
  down = np.array([-np.sin(r), np.cos(r)]) * size[1] * scale / 2
  right = np.array([np.cos(r), np.sin(r)]) * size[0] * scale / 2
  src = np.stack([centre, centre + down, centre + right])
  got = src @ a[:, :2].T + a[:, 2]
  np.testing.assert_allclose(got, [[128, 128], [128, 256], [256, 128]], atol=1e-3)


def _scene(seed, num_views=3, joints=6):
  """Random world pose (mm) seen by cameras looking at it from ~4-5 m, with crops around it."""
  rng = _rng(seed)
  pose_world = rng.normal(0, 200, (joints, 3)) + np.array([100.0, -50.0, 900.0])
  rs, ts = [], []
  for _ in range(num_views):
    yaw = rng.uniform(-np.pi, np.pi)
    c, s = np.cos(yaw), np.sin(yaw)
    # camera x = world (c, s, 0), y = -world z (down), z = optical axis towards the subject
    r = np.array([[c, s, 0.0], [0.0, 0.0, -1.0], [-s, c, 0.0]])
    rs.append(r)
    ts.append(pose_world[0] - r.T @ np.array([0.0, 0.0, rng.uniform(4000, 5000)]))
  k = np.array([[1145.0, 0, 512.0], [0, 1144.0, 515.0], [0, 0, 1]])
  ks = np.stack([k] * num_views)
  root_cam = np.einsum('vij,vj->vi', np.stack(rs), pose_world[0] - np.stack(ts))
  centre = root_cam[:, :2] / root_cam[:, 2:] * 1145.0 + 512.0 + rng.normal(0, 10, (num_views, 2))
  box = 2000.0 * 1145.0 / root_cam[:, 2:] * np.ones((1, 2))  # the official 2 m box at root depth
  return pose_world, np.stack(rs), np.stack(ts), ks, centre, box


def test_labels_decode_back_to_the_camera_frame_pose():
  pose_world, r, t, k, centre, box = _scene(2)
  v = len(r)
  rot = np.array([0.0, 12.0, -30.0])
  labels, weights = ep.patch_labels_from_world(pose_world, r, t, k, centre, box, np.ones(v), rot)
  assert labels.shape == (v, 6, 3) and np.all(weights == 1)
  assert np.all(np.abs(labels) < 0.5)
  pose_cam = np.einsum('vij,vnj->vni', r, pose_world[None] - t[:, None])
  k_crop = np.stack(
    [
      np.vstack([ep._crop_affine(centre[i], box[i], 256, 1.0, rot[i]), [0, 0, 1]]) @ k[i]
      for i in range(v)
    ]
  )
  decoded = ep.decode_camera(labels, k_crop, pose_cam[:, 0, 2])
  np.testing.assert_allclose(decoded, pose_cam, atol=0.05)  # mm; labels are float32
  np.testing.assert_allclose(labels[:, 0, 2], 0.0)  # root-relative depth
  # Root-relative depth in units of the 2 m box, shrunk by the scale augmentation.
  scaled, _ = ep.patch_labels_from_world(pose_world, r, t, k, centre, box, np.full(v, 1.25), rot)
  z = pose_cam[..., 2] - pose_cam[:, :1, 2]
  np.testing.assert_allclose(scaled[..., 2], z / (2000 * 1.25), atol=1e-6)


def test_decode_patch_and_encode_are_inverse():
  rng = _rng(3)
  uv = rng.uniform(0, 256, (2, 5, 2))
  z = rng.uniform(-900, 900, (2, 5))
  norm = ep.encode_patch_labels(uv, z, np.array([1.0, 1.0]))
  patch = np.asarray(ep.decode_patch(jnp.asarray(norm, jnp.float32)))
  np.testing.assert_allclose(patch[..., :2], uv, atol=1e-3)
  np.testing.assert_allclose(patch[..., 2] / 256 * 2000, z, atol=1e-2)  # z_patch / P * R = z_rel
