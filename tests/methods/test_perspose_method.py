"""PersPose trainer hooks (METHOD): pose loss terms, body labels, prediction slots, root metrics,
the eval step on image batches, and a tiny loss/gradient pass through the real model."""

import jax
import jax.numpy as jnp
import ml_collections as mlc
import numpy as np
import pytest

from jaxpose.body import hybrik, smpl, synthetic
from jaxpose.eval import steps as eval_steps
from jaxpose.geometry import rotation
from jaxpose.geometry.perspective import perspective_rotation
from jaxpose.methods import perspose as M

B, J, S = 3, 17, 64
RNG = np.random.default_rng(0)
IDX = np.asarray(M.DATA_TO_MODEL['h36m17'])


def _config(**kwargs):
  c = mlc.ConfigDict(
    dict(
      data=dict(skeleton='h36m17', image=dict(size=S)),
      eval=dict(flip_test=False, protocol='h36m'),
      method=dict(name='perspose', kwargs=kwargs),
      model=dict(name='perspose', variant='standin', kwargs=dict(feat_channels=4, global_dim=8)),
    )
  )
  c.model.kwargs.stem_channels = 8
  return c


def _batch(rotate=True):
  """Absolute poses ~4 m away, PR-rotated, with the crop K and exact 2D."""
  pose = RNG.normal(0.0, 0.25, (B, J, 3))
  root = np.stack([RNG.uniform(-1, 1, B), RNG.uniform(-0.5, 0.5, B), RNG.uniform(3.5, 5, B)], -1)
  k_full = np.array([[300.0, 0, 250], [0, 300, 250], [0, 0, 1]])
  rs, xs = [], []
  for i in range(B):
    x = pose[i] - pose[i, :1] + root[i]
    c = (k_full @ root[i])[:2] / root[i, 2]
    r = perspective_rotation(k_full, c, k_full[:2, 2])[0] if rotate else np.eye(3)
    rs.append(r)
    xs.append(x @ r.T)
  x = np.stack(xs)
  k = np.tile(np.array([[100.0, 0, S / 2], [0, 100, S / 2], [0, 0, 1]]), (B, 1, 1))
  q = np.einsum('bij,bnj->bni', k, x)
  return {
    'image_u8': RNG.integers(0, 255, (B, S, S, 3)).astype(np.uint8),
    'pose3d_cam': (x - x[:, :1]).astype(np.float32),
    'pose3d_root': x[:, :1].astype(np.float32),
    'K_crop': k.astype(np.float32),
    'kp2d_px': (q[..., :2] / q[..., 2:]).astype(np.float32),
    'kp2d_vis': np.ones((B, J), np.float32),
    'perspective_R': np.stack(rs).astype(np.float32),
    'pe_valid': np.ones(B, np.float32),
    'valid': np.ones((B, 1), bool),
  }


def _exact_output(batch, shift_uv=0.0, root_dz=0.0):
  """A model output dict that reproduces the batch's labels (plus optional errors)."""
  x = batch['pose3d_cam'] + batch['pose3d_root']
  k = batch['K_crop']
  f = (k[:, 0, 0] + k[:, 1, 1]) / 2
  uv = np.zeros((B, 25, 2), np.float32)
  depth = np.zeros((B, 25, 1), np.float32)
  xyz = np.zeros((B, 25, 3), np.float32)
  uv[:, IDX] = batch['kp2d_px'] + shift_uv
  depth[:, IDX] = x[..., 2:] - x[:, :1, 2:]
  xyz[:, IDX] = batch['pose3d_cam']
  dens = 1000 * (depth / f[:, None, None] + x[:, :1, 2:] / f[:, None, None])
  xyz0 = batch['pose3d_root'] + np.array([0, 0, root_dz], np.float32)
  return {'uv': uv, 'depth': depth, 'density': dens, 'xyz': xyz, 'xyz0': xyz0}


def test_pose_terms_zero_on_exact_output_and_measure_errors():
  batch = _batch()
  t = M.pose_loss_terms(_exact_output(batch), batch, 'h36m17', 1.8)
  for k in ('uv', 'depth', 'density_root', 'xyz'):
    assert float(t[k]) < 1e-3, (k, t[k])
  t = M.pose_loss_terms(_exact_output(batch, shift_uv=np.array([3.0, 4.0])), batch, 'h36m17', 1.8)
  np.testing.assert_allclose(t['uv'], 5.0, rtol=1e-5)
  out = _exact_output(batch)
  out['depth'] = out['depth'] + 0.02 * (np.arange(25) > 0)[None, :, None]  # 2 cm, root stays 0
  t = M.pose_loss_terms(out, batch, 'h36m17', 1.8)
  np.testing.assert_allclose(t['depth'], 2.0 * 16 / 17, rtol=1e-3)  # cm over the 17 joints


def test_slots_respect_the_models_flip_pairs():
  from jaxpose.geometry import skeleton
  from jaxpose.models.perspose import flip_permutation

  perm = flip_permutation()
  data_perm = np.asarray(skeleton.get('h36m17').flip_perm)
  np.testing.assert_array_equal(perm[IDX], IDX[data_perm])


class _Stub:
  """A 'model' whose apply returns a fixed output dict (for predict and eval_metrics)."""

  def __init__(self, out):
    self.out = {k: jnp.asarray(v) for k, v in out.items()}

  def apply(self, variables, image, k, pe, train):
    del variables, image, k, pe, train
    return self.out


def test_predict_and_root_metrics_in_the_original_camera_frame():
  batch = _batch()
  out = _exact_output(batch, root_dz=0.05)
  model = _Stub(out)
  pred = M.predict(model, {}, batch, _config())
  assert pred.shape == (B, 1, J, 3)
  np.testing.assert_allclose(pred[:, 0], batch['pose3d_cam'], atol=1e-6)
  m = M.eval_metrics(model, {}, batch, _config())
  np.testing.assert_allclose(m['root_err_mm'], 50.0, rtol=1e-4)  # rotation invariant
  # In the unrotated frame the 5 cm error along the rotated optical axis has a depth share R[2,2].
  expect = 50.0 * np.abs(batch['perspective_R'][:, 2, 2])[:, None]
  np.testing.assert_allclose(m['root_depth_err_mm'], expect, rtol=1e-4)
  assert np.all(expect < 50.0 - 1e-3)  # the rotations are not the identity


def test_eval_step_scores_image_batches():
  batch = _batch()
  out = _exact_output(batch)
  out['xyz'][:, IDX[1]] += np.array([0.0, 0.17, 0.0], np.float32)  # one joint 17 cm off
  method = M.METHOD
  step = eval_steps.make_eval_step(_Stub(out), method, _config())
  res = step({}, batch)
  np.testing.assert_allclose(res['mpjpe_mm'], 10.0, rtol=1e-4)  # 170 mm / 17 joints
  assert res['root_depth_err_mm'].shape == (B, 1)


def test_body_labels_match_forward_kinematics():
  body = synthetic.synthetic_model('small')
  aa = RNG.normal(0, 0.3, (2, 24, 3))
  rot = np.asarray(rotation.axis_angle_to_matrix(aa), np.float32)
  betas = RNG.normal(0, 0.5, (2, 10)).astype(np.float32)
  r = np.asarray(rotation.axis_angle_to_matrix(RNG.normal(0, 0.3, (2, 3))), np.float32)
  lab = M.body_labels(body, {'body_rotmat': rot, 'body_betas': betas, 'perspective_R': r})
  out = smpl.forward(body, rot, betas)
  bones = np.asarray(out.joints - out.joints[:, np.asarray((0, *smpl.SMPL_PARENTS[1:]))])
  bones = np.einsum('bij,bnj->bni', r, bones)  # the PR-rotated camera frame
  tw = np.asarray(lab['smpl_ortho_twist'])[:, 1:]
  np.testing.assert_allclose(np.sum(tw * bones[:, 1:], -1), 0.0, atol=1e-5)
  assert lab['smpl_beta'].shape == (2, 11) and float(jnp.abs(lab['smpl_beta'][:, 10]).max()) == 0
  zero = {
    'ortho_twist': lab['smpl_ortho_twist'] * 3.0,
    'beta': lab['smpl_beta'],
    'leaf_rot': lab['leaf_rot_gt'],
  }
  t = M.body_loss_terms(zero, lab, jnp.ones(2, bool))
  assert max(float(v) for v in t.values()) < 1e-4
  # IK with these twists returns the rotated pose
  posed = np.einsum('bij,bnj->bni', r, np.asarray(out.joints))
  rot_r = rot.copy()
  rot_r[:, 0] = r @ rot[:, 0]
  _, got, _ = hybrik.ik_with_ortho_twist(
    body, posed, lab['smpl_ortho_twist'], betas, lab['leaf_rot_gt'], search=False
  )
  assert np.abs(np.asarray(got) - rot_r).max() < 5e-3


@pytest.mark.parametrize('pe', [True, False])
def test_loss_fn_on_the_model_gives_finite_gradients_and_pe_switch(pe):
  config = _config(pe=pe)
  model = M.make_model(config)
  batch = _batch()
  variables = model.init(jax.random.key(0), *M.init_inputs(config, model), train=False)
  params = variables.pop('params')
  grad, (scalars, _) = jax.grad(
    lambda p: M.loss_fn(model, p, variables, batch, jax.random.key(1), config), has_aux=True
  )(params)
  assert np.isfinite(float(scalars['loss']))
  g = np.asarray(grad['cam_layer']['kernel'])
  assert np.all(np.isfinite(g))
  assert (np.abs(g).max() > 0) == pe  # the PE conv learns only with the encoding on


@pytest.mark.slow
def test_smoke_config_trains_and_evaluates_through_the_default_trainer(render_dir, tmp_path):
  """configs/perspose.py:smoke on deepmimic_render/tiny: 2 steps, 1 eval batch."""
  import importlib

  from jaxpose.data import image_pipeline
  from jaxpose.train import loop

  c = importlib.import_module('configs.perspose').get_config('smoke')
  c.data.data_dir = str(render_dir)
  c.train.update(total_steps=2, ckpt_every=2, log_every=1, progress=False)
  c.eval.max_batches = 1
  try:
    res = loop.run(c, tmp_path / 'run')
  finally:
    image_pipeline.clear_stores()
  assert res['num_frames'] > 0 and np.isfinite(res['mpjpe_mm'])
  assert np.isfinite(res['root_depth_err_mm']) and np.isfinite(res['root_err_mm'])


def test_smpl_fit_recovers_the_body_from_exact_outputs():
  """Model outputs built from a posed synthetic body -> smpl_fit -> the same mesh."""
  body = synthetic.synthetic_model('small')
  rot = np.asarray(rotation.axis_angle_to_matrix(RNG.normal(0, 0.3, (2, 24, 3))), np.float32)
  betas = RNG.normal(0, 0.5, (2, 10)).astype(np.float32)
  betas[:, 0] = (0.3, -0.7)
  transl = np.array([[0.2, -0.1, 4.0], [-0.5, 0.3, 5.0]], np.float32)
  fk = smpl.forward(body, rot, betas, transl)
  j = np.asarray(fk.joints)
  out = {
    'xyz': np.concatenate([j - j[:, :1], np.zeros((2, 1, 3), np.float32)], 1),
    'xyz0': j[:, :1],
    'ortho_twist': np.concatenate([hybrik.ortho_twist(fk.rest_joints, rot), np.ones((2, 1, 3))], 1),
    'beta': np.concatenate([betas * (0, *[1] * 9), np.zeros((2, 1), np.float32)], 1),  # beta0 = 0
    'leaf_rot': rot[:, np.asarray(hybrik.LEAF_JOINTS)],
  }
  b, r, t = jax.jit(M.smpl_fit, static_argnums=())(body, out)
  np.testing.assert_allclose(np.asarray(b)[:, 0], betas[:, 0], atol=1e-5)
  back = smpl.forward(body, r, b, t)
  np.testing.assert_allclose(np.asarray(back.vertices), np.asarray(fk.vertices), atol=5e-3)
