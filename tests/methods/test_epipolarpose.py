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


# ------------------------------------------------------------------------------------------------
# on-device labels from K_crop (the method's targets) and the evaluation decoding


def _k_crop(k, centre, box, scale, rot):
  return np.vstack([ep._crop_affine(centre, box, 256, scale, rot), [0, 0, 1]]) @ k


def test_encode_from_k_crop_equals_the_official_labels():
  """encode_pose_labels(pose, K_crop) reproduces patch_labels_from_world (the official encoding)
  for the box crop, scale augmentation and rotation included (square pixels; H36M's fx/fy differ
  by 0.1%, which scales z by sqrt(fy / fx))."""
  pose_world, r, t, k, centre, box = _scene(5, num_views=3)
  k_h36m = k.copy()
  k[:, 1, 1] = k[:, 0, 0]
  scale, rot = np.array([1.0, 1.25, 0.8]), np.array([0.0, 20.0, -35.0])
  official, _ = ep.patch_labels_from_world(pose_world, r, t, k, centre, box, scale, rot)
  pose_cam = np.einsum('vij,vnj->vni', r, pose_world[None] - t[:, None])
  k_crop = np.stack([_k_crop(k[i], centre[i], box[i], scale[i], rot[i]) for i in range(3)])
  got = np.asarray(ep.encode_pose_labels(pose_cam, k_crop, 256))
  np.testing.assert_allclose(got, official, atol=1e-5)
  # Scale-free: the pseudo-3D of an extrinsics-free triangulation encodes the same.
  np.testing.assert_allclose(ep.encode_pose_labels(pose_cam * 3.7, k_crop, 256), got, atol=1e-5)
  assert not np.allclose(ep.encode_pose_labels(pose_cam + [0, 0, 500.0], k_crop, 256), got)
  official, _ = ep.patch_labels_from_world(pose_world, r, t, k_h36m, centre, box, scale, rot)
  k_crop = np.stack([_k_crop(k_h36m[i], centre[i], box[i], scale[i], rot[i]) for i in range(3)])
  got = np.asarray(ep.encode_pose_labels(pose_cam, k_crop, 256))
  np.testing.assert_allclose(got[..., :2], official[..., :2], atol=1e-5)
  np.testing.assert_allclose(got[..., 2], official[..., 2] * np.sqrt(1144 / 1145), atol=1e-6)


def test_decode_root_relative_inverts_the_encoding():
  pose_world, r, t, k, centre, box = _scene(6, num_views=2)
  k[:, 1, 1] = k[:, 0, 0]
  pose_cam = np.einsum('vij,vnj->vni', r, pose_world[None] - t[:, None]) / 1000  # metres
  k_crop = np.stack([_k_crop(k[i], centre[i], box[i], 1.1, 15.0) for i in range(2)])
  label = ep.encode_pose_labels(pose_cam, k_crop, 256)
  got = ep.decode_root_relative(label, jnp.asarray(k_crop), pose_cam[:, 0, 2], 256, root=0)
  np.testing.assert_allclose(got, pose_cam - pose_cam[:, :1], atol=1e-4)
  # depth_unit: 2 m box x scale 1.1 at evaluation
  np.testing.assert_allclose(ep.depth_unit(k_crop, pose_cam[:, 0, 2], 256), 2.0 * 1.1, rtol=1e-5)


def _image_batch(seed=7, b=2, v=None, size=64, j=5):
  """A consistent image batch: kp2d_px is the projection of pose3d_cam + root through K_crop."""
  rng = _rng(seed)
  lead = (b,) if v is None else (b, v)
  pose = rng.normal(0, 0.3, (*lead, j, 3))
  pose -= pose[..., :1, :]
  root = np.concatenate([rng.normal(0, 0.2, (*lead, 1, 2)), rng.uniform(4, 5, (*lead, 1, 1))], -1)
  f = size * 4.5 / 2.0
  k = np.broadcast_to(np.array([[f, 0, size / 2], [0, f, size / 2], [0, 0, 1.0]]), (*lead, 3, 3))
  q = np.einsum('...ij,...nj->...ni', k, pose + root)
  return {
    'image_u8': np.zeros((*lead, size, size, 3), np.uint8),
    'kp2d_px': (q[..., :2] / q[..., 2:]).astype(np.float32),
    'kp2d_vis': np.ones((*lead, j), np.float32),
    'pose3d_cam': pose.astype(np.float32),
    'pose3d_root': root.astype(np.float32),
    'K_crop': k.astype(np.float32),
  }


def test_targets_per_mode():
  batch = {k: jnp.asarray(x) for k, x in _image_batch().items()}
  batch['kp2d_vis'] = batch['kp2d_vis'].at[0, 1].set(0.0)
  sup, w_sup = ep.targets(batch, 'sup', 64, 0.5, root=0)
  q = batch['kp2d_px'] / 64 - 0.5
  np.testing.assert_allclose(sup[..., :2], q, atol=1e-5)
  np.testing.assert_allclose(sup[..., 0, 2], 0.0, atol=1e-6)
  assert np.all(np.asarray(w_sup[0, 1]) == 0) and np.allclose(w_sup[1, 0], [1, 1, 0.5])
  teach, w_t = ep.targets(batch, 'teacher', 64, 0.5, root=0)
  np.testing.assert_allclose(teach, sup)
  assert np.all(np.asarray(w_t[..., 2]) == 0) and np.allclose(w_t[1, :, :2], 1)
  # ss: the pseudo-3D (any scale) gives the supervised labels; invalid samples weigh nothing.
  pseudo = (batch['pose3d_cam'] + batch['pose3d_root']) * 2.5
  ss_batch = {**batch, 'pseudo3d': pseudo, 'pseudo_valid': jnp.array([True, False])}
  ss, w_ss = ep.targets(ss_batch, 'ss', 64, 1.0, root=0)
  np.testing.assert_allclose(ss, sup, atol=1e-5)
  assert np.all(np.asarray(w_ss[1]) == 0) and np.any(np.asarray(w_ss[0]) > 0)


def test_flat_views_keeps_the_pairs_together():
  batch = _image_batch(b=3, v=2)
  batch['pseudo3d'] = batch['pose3d_cam'] + batch['pose3d_root']
  batch['pseudo_valid'] = np.array([True, False, True])
  batch['seq_id'] = np.arange(3)
  flat = ep._flat_views({k: jnp.asarray(x) for k, x in batch.items()})
  assert flat['image_u8'].shape == (6, 64, 64, 3) and flat['seq_id'].shape == (3,)
  np.testing.assert_array_equal(flat['pseudo_valid'], [1, 1, 0, 0, 1, 1])
  np.testing.assert_allclose(flat['K_crop'][3], batch['K_crop'][1, 1])
  np.testing.assert_allclose(flat['pseudo3d'][4], batch['pseudo3d'][2, 0])


def test_settings_reject_unknown_mode():
  import ml_collections as mlc

  cfg = mlc.ConfigDict({'method': {'name': 'epipolarpose', 'kwargs': {'mode': 'semi'}}})
  with pytest.raises(ValueError, match='valid: sup, teacher, ss, ss_rt, refine'):
    ep.settings(cfg)


def test_multistep_epoch_schedule_decays_at_the_milestones():
  """The paper's schedule (torch MultiStepLR): x0.1 at the start of epochs 90 and 120."""
  import ml_collections as mlc

  from jaxpose.train import optim

  sched = mlc.ConfigDict(dict(type='multistep_epoch', decay=0.1, milestones=(2, 4), warmup_steps=0))
  f = optim.make_schedule(sched, 1e-3, total_steps=60, steps_per_epoch=10)
  got = [float(f(s)) for s in (0, 19, 20, 39, 40, 59)]
  np.testing.assert_allclose(got, [1e-3, 1e-3, 1e-4, 1e-4, 1e-5, 1e-5], rtol=1e-6)
