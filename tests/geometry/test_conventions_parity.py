"""VideoPose3D conventions parity: skeleton, H36M cameras, projections and metrics vs the official code.

Fixtures: `<parity dir>/videopose3d__conventions*.npz` (see fixtures/README.md); skipped when absent.
Cameras are matched to the package's H36M table by their quaternion, so any subject's cameras work.
"""

import jax.numpy as jnp
import numpy as np
import pytest

import jaxpose.metrics as M
from jaxpose.geometry import camera, skeleton
from tests.parity._fixtures import Fixture, assert_parity, fixture_files

TOL = {'atol': 1e-6, 'rtol_l2': 1e-6}
FILES = fixture_files('videopose3d', 'conventions*')


@pytest.fixture(scope='module', params=FILES)
def fx(request):
  return Fixture(request.param)


def _cams(fx):
  n = 0
  while f'output/cam{n}/intrinsic' in fx:
    n += 1
  assert n > 0, 'fixture has no cameras'
  return [f'output/cam{i}/' for i in range(n)]


def _package_camera(orientation):
  for subject, cams in camera.h36m_cameras(include_extra=True).items():
    for cam in cams:
      if np.max(np.abs(cam['orientation'] - orientation)) < 1e-6:
        return subject, cam
  raise AssertionError(f'no packaged H36M camera has orientation {orientation}')


def test_skeleton(fx):
  sk = skeleton.get('h36m17')
  np.testing.assert_array_equal(sk.parents, fx['output/skeleton_parents'])
  np.testing.assert_array_equal(sk.left, fx['output/joints_left'])
  np.testing.assert_array_equal(sk.right, fx['output/joints_right'])


def test_packaged_camera_constants(fx):
  for pre in _cams(fx):
    _, cam = _package_camera(fx[pre + 'orientation'])
    assert_parity(cam['intrinsic'], fx[pre + 'intrinsic'], name=pre + 'intrinsic', **TOL)
    assert_parity(cam['translation'], fx[pre + 'translation'], name=pre + 'translation', **TOL)
    np.testing.assert_array_equal([cam['res_w'], cam['res_h']], fx[pre + 'res_wh'])


@pytest.mark.parametrize('xp', [jnp, np], ids=['jnp', 'numpy64'])
def test_world_camera_roundtrip(fx, xp):
  def cast(a):
    return jnp.asarray(a) if xp is jnp else np.asarray(a, np.float64)

  x = cast(fx['input/world_positions_17'])
  for pre in _cams(fx):
    q, t = cast(fx[pre + 'orientation']), cast(fx[pre + 'translation'])
    pos_cam = camera.world_to_camera(x, q, t)
    assert isinstance(pos_cam, jnp.ndarray if xp is jnp else np.ndarray)
    assert_parity(pos_cam, fx[pre + 'pos_cam'], name=pre + 'pos_cam', **TOL)
    back = camera.camera_to_world(cast(fx[pre + 'pos_cam']), q, t)
    assert_parity(back, fx[pre + 'pos_world_back'], name=pre + 'pos_world_back', **TOL)


@pytest.mark.parametrize('xp', [jnp, np], ids=['jnp', 'numpy'])
def test_projection(fx, xp):
  for pre in _cams(fx):
    x, k = xp.asarray(fx[pre + 'pos_cam']), xp.asarray(fx[pre + 'intrinsic'])
    assert_parity(camera.project_to_2d(x, k), fx[pre + 'proj_norm'], name=pre + 'proj', **TOL)
    lin = camera.project_to_2d_linear(x, k)
    assert_parity(lin, fx[pre + 'proj_linear_norm'], name=pre + 'proj_linear', **TOL)


def test_screen_coordinates(fx):
  for pre in _cams(fx):
    w, h = fx[pre + 'res_wh']
    px = camera.image_coordinates(fx[pre + 'proj_norm'], w, h)
    assert px.dtype == np.float64  # numpy in, numpy out, as the official float64 pixels
    assert_parity(px, fx[pre + 'proj_pixels'], name=pre + 'pixels', **TOL)
    renorm = camera.normalize_screen_coordinates(fx[pre + 'proj_pixels'], w, h)
    assert_parity(renorm, fx[pre + 'renorm'], name=pre + 'renorm', **TOL)


def test_root_relative_keeps_trajectory(fx):
  # VideoPose3D targets: joints 1.. relative to the root, joint 0 keeps the camera-space root.
  for pre in _cams(fx):
    pos = fx[pre + 'pos_cam']
    rel = skeleton.root_relative(pos, 'h36m17')
    ours = np.concatenate([pos[:, :1], rel[:, 1:]], axis=1)
    assert_parity(ours, fx[pre + 'pos_cam_vp3d_convention'], name=pre + 'vp3d_convention', **TOL)


def test_metrics(fx):
  pred, gt = fx['input/metric_pred'], fx['input/metric_gt']
  flat_p, flat_g = pred.reshape(-1, *pred.shape[-2:]), gt.reshape(-1, *gt.shape[-2:])
  checks = {
    'mpjpe': M.mpjpe(pred, gt).mean(),
    'weighted_mpjpe_perjoint_w': M.mpjpe(pred, gt, weights=fx['input/metric_w']).mean(),
    'n_mpjpe': M.n_mpjpe(pred, gt).mean(),
    # Official numpy versions take (N, J, 3); velocity is over consecutive samples of that array.
    'p_mpjpe': M.p_mpjpe(flat_p, flat_g).mean(),
    'mean_velocity_error': M.mpjve(flat_p, flat_g).mean(),
  }
  for key, value in checks.items():
    assert_parity(value, fx['output/' + key], name=key, **TOL)
