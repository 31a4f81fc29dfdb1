"""DSR in the default trainer: device-side labels, the crop rotation, the loss's conventions and
the semantic render (methods/dsr.py METHOD; the official numbers are in test_dsr_parity.py)."""

import jax
import jax.numpy as jnp
import ml_collections as mlc
import numpy as np
import pytest

from jaxpose.body import parts
from jaxpose.data import images
from jaxpose.methods import dsr
from jaxpose.models import dsr as dsr_model
from jaxpose.render import zbuffer

L = {name: i for i, name in enumerate(dsr.GRPH_LABELS)}
SIZE = 24


def _config(**kwargs):
  c = mlc.ConfigDict()
  c.data = mlc.ConfigDict({'image': {'size': SIZE}, 'name': 'none', 'train_split': 'train'})
  c.method = mlc.ConfigDict({'name': 'dsr', 'kwargs': {'body': 'small', **kwargs}})
  return c


def test_device_labels_equal_the_host_preparation():
  """`device_labels` (jnp, batched) gives `prepare_labels`' numbers (numpy, parity-tested)."""
  rng = np.random.default_rng(0)
  prior = dsr.synthetic_semantic_prior(50, seed=1)
  maps, kps, confs = [], [], []
  for i in range(3):
    lab = np.zeros((64, 64), np.int32)
    lab[5:40, 10:30] = L['upperclothes']
    lab[40:52, 12:22] = L['pants']
    lab[20:30, 30:38] = L['leftArm']  # 80 px: valid
    lab[30:36, 40:50] = L['rightArm']  # 60 px: not > 60
    lab[0:9, 14:22] = L['face'] if i else L['hat']  # 72 px
    lab[55:64, 0:64] = L['leftShoe']  # outside the keypoint box for some samples
    maps.append(lab)
    kps.append(rng.uniform(10, 50, (17, 2)))
    confs.append(rng.uniform(0, 1, 17) * (i != 2))  # sample 2: no keypoint -> whole map
  want = dsr.stack_labels([dsr.prepare_labels(m, k, c, prior) for m, k, c in zip(maps, kps, confs)])
  got = dsr.device_labels(
    jnp.asarray(np.stack(maps)), jnp.asarray(np.stack(kps)), jnp.asarray(np.stack(confs)), prior
  )
  for k in ('dsr_mc_mask', 'dsr_mc_valid', 'dsr_c_label', 'dsr_c_weight', 'dsr_texture_mc'):
    np.testing.assert_allclose(np.asarray(got[k]), want[k], rtol=1e-6, err_msg=k)
  assert len({tuple(v) for v in want['dsr_mc_valid'].tolist()}) > 1  # the cases differ


@pytest.mark.parametrize('flip', [False, True])
@pytest.mark.parametrize('rot', [0.0, 25.0, -140.0])
def test_crop_rotation_turns_the_crop_camera_upright(rot, flip):
  """K_crop R_z^T is an upright pinhole (no in-plane rotation) for rotated and mirrored crops."""
  K = np.array([[500.0, 0, 250], [0, 502.0, 240], [0, 0, 1]])
  m = images.crop_matrix((260.0, 230.0), (300.0, 300.0), 64, 1.1, rot)
  mirror = np.diag([1.0, 1.0, 1.0])
  if flip:
    m = images.flip_matrix(64) @ m
    mirror = np.diag([-1.0, 1.0, 1.0])
  k_crop = m @ K @ mirror
  rz = np.asarray(dsr.crop_rotation(jnp.asarray(k_crop[None], jnp.float32)))[0]
  np.testing.assert_allclose(rz @ rz.T, np.eye(3), atol=1e-6)
  upright = k_crop @ rz.T
  assert abs(upright[0, 1]) < 1e-2 * upright[0, 0] and abs(upright[1, 0]) < 1e-2 * upright[1, 1]
  assert upright[0, 0] > 0 and upright[1, 1] > 0


def test_parts_prior_dresses_the_body():
  fp = np.array([parts.PARTS.index(n) for n in ('head', 'torso', 'left_hand', 'right_foot')])
  p = dsr.parts_prior(fp, 0.1)
  np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-6)
  assert [dsr.GRPH_LABELS[i] for i in p.argmax(1)] == [
    'face',
    'upperclothes',
    'leftArm',
    'rightShoe',
  ]
  lut = dsr.part_label_lut(('background', 'left_lower_leg', 'unknown_part'))
  assert lut.tolist() == [0, L['leftLeg'], 0]


@pytest.fixture(scope='module')
def tiny():
  """A tiny DSR network, its variables, and a batch whose labels are its own prediction."""
  model = dsr_model.Model(
    depth=18, width=8, hidden=16, img_res=SIZE, focal_length=5000 * SIZE / 224
  )
  image = np.random.default_rng(0).integers(0, 255, (2, SIZE, SIZE, 3), np.uint8)
  variables = model.init(
    {'params': jax.random.PRNGKey(0)}, jnp.zeros((1, SIZE, SIZE, 3)), train=False
  )
  out = model.apply(variables, images.imagenet_normalize(image), train=False)
  return model, variables, image, out


def _self_batch(tiny, config):
  """Labels made from the network's own eval output through an upright crop camera: kp2d_px by
  projecting the predicted joints with K = [[f, 0, S/2], [0, f, S/2]] and the predicted cam_t."""
  model, variables, image, out = tiny
  assets = dsr._assets(dsr._settings(config))
  verts = dsr.body_forward(assets, out['body_rotmat'], out['body_betas']).vertices
  j17 = np.asarray(jnp.einsum('kv,bvc->bkc', assets['h36m'], verts), np.float64)
  cam = j17 + np.asarray(out['cam_t'])[:, None]
  K = np.array([[model.focal_length, 0, SIZE / 2], [0, model.focal_length, SIZE / 2], [0, 0, 1]])
  return {
    'image_u8': image,
    'kp2d_px': images.project(K, cam).astype(np.float32),
    'kp2d_vis': np.ones((2, 17), np.float32),
    'pose3d_cam': (j17 - j17[:, :1]).astype(np.float32),
    'K_crop': np.broadcast_to(K, (2, 3, 3)).astype(np.float32),
    'body_rotmat': np.asarray(out['body_rotmat']),
    'body_betas': np.asarray(out['body_betas']),
    'has_smpl': np.ones(2, bool),
    'verts': np.asarray(verts),
    'assets': assets,
  }


@pytest.mark.slow  # ~40 s on the shared CPU (eager tiny ResNet + body)
def test_loss_is_zero_on_the_networks_own_prediction(tiny):
  """Supervised terms vanish when the labels are the network's own (eval) output: the 2D
  normalisation, the crop camera, the 3D centring and the rotation targets agree; predict_batch
  returns the same joints. Dropout is off (drop_rate in the module is 0.5: use eval-mode apply)."""
  model, variables, _, _ = tiny
  config = _config(dsr_mc=0.0, dsr_c=0.0)
  b = _self_batch(tiny, config)
  batch = {k: jnp.asarray(v) for k, v in b.items() if k not in ('verts', 'assets')}
  model0 = model.clone(drop_rate=0.0)
  params, state = variables['params'], {k: v for k, v in variables.items() if k != 'params'}
  _, (sc, _) = dsr.loss_fn(model0, params, state, batch, jax.random.PRNGKey(0), config)
  # BatchNorm in train mode uses batch statistics, so the train output differs a little from the
  # eval output the labels come from: compare with a perturbed label instead of exact zeros.
  bad = dict(batch, kp2d_px=batch['kp2d_px'] + 2.0, pose3d_cam=batch['pose3d_cam'] * 1.2)
  _, (sc_bad, _) = dsr.loss_fn(model0, params, state, bad, jax.random.PRNGKey(0), config)
  assert sc['loss/keypoints'] < 0.2 * sc_bad['loss/keypoints']
  assert sc['loss/keypoints_3d'] < 0.2 * sc_bad['loss/keypoints_3d']
  pred = dsr.predict_batch(model, variables, batch, config)
  np.testing.assert_allclose(np.asarray(pred)[:, 0], b['pose3d_cam'], atol=1e-5)
  m = dsr.eval_metrics(model, variables, batch, config)
  np.testing.assert_allclose(np.asarray(m['pve_mm']), 0.0, atol=1e-3)


@pytest.mark.slow
def test_semantic_terms_prefer_the_rendered_labels(tiny):
  """DSR-MC and DSR-C are lower with part labels rendered from the predicted body (z-buffer,
  same crop camera) than with those labels shifted by a few pixels; gradients are finite."""
  model, _, _, out = tiny
  config = _config()
  s = dsr._settings(config)
  b = _self_batch(tiny, config)
  fp = parts.face_parts(np.asarray(b['assets']['model'].weights), b['assets']['faces'])
  K = b['K_crop'][0].astype(np.float64)
  labels = []
  for i in range(2):
    img = zbuffer.render(
      b['verts'][i],
      b['assets']['faces'],
      K,
      SIZE,
      SIZE,
      t=np.asarray(out['cam_t'][i]),
      pixel_center=0.0,
    )
    f = img.fragments.face_index
    labels.append(np.where(f >= 0, fp[np.maximum(f, 0)], 0).astype(np.uint8))
  lut = dsr.part_label_lut(parts.PARTS)

  def terms(lab, verts):
    batch = {'part_label_u8': jnp.asarray(lab), 'kp2d_px': b['kp2d_px'], 'kp2d_vis': b['kp2d_vis']}
    return dsr.semantic_terms(model, out, verts, batch, b['assets'], lut, s, SIZE)

  good = terms(np.stack(labels), jnp.asarray(b['verts']))
  shifted = terms(np.roll(np.stack(labels), 4, axis=2), jnp.asarray(b['verts']))
  assert good['dsr_mc'] < shifted['dsr_mc'] and good['dsr_c'] < shifted['dsr_c'], (good, shifted)
  g = jax.grad(lambda v: sum(terms(np.stack(labels), v).values()))(jnp.asarray(b['verts']))
  assert np.isfinite(np.asarray(g)).all() and np.abs(np.asarray(g)).max() > 0
