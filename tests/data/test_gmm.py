"""GMM 2D inputs: heatmap EM, the confidence construction, the file format and the h36m configs."""

import numpy as np
import pytest

from jaxpose.data import gmm
from jaxpose.data.io import DataFormatError


def _heatmap(h=32, w=40, comps=((0.7, 10.0, 12.0, 1.5), (0.3, 28.0, 20.0, 2.0))):
  yy, xx = np.mgrid[0:h, 0:w]
  hm = np.zeros((h, w))
  for wt, x, y, s in comps:
    hm += wt * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * s**2)) / (2 * np.pi * s**2)
  return hm.astype(np.float32)


def test_fit_heatmaps_recovers_a_two_kernel_mixture():
  hm = np.stack([_heatmap(), _heatmap(comps=((1.0, 20.0, 16.0, 1.0),))])[None]  # (1, J=2, H, W)
  mix = gmm.fit_heatmaps(hm, num_kernels=3, scale=4.0, offset=np.array([100.0, 50.0]))
  assert mix.shape == (1, 2, 3, 5)
  np.testing.assert_allclose(mix[..., 0].sum(-1), 1.0, atol=1e-5)
  a = mix[0, 0]
  np.testing.assert_allclose(a[0, 0], 0.7, atol=0.03)
  np.testing.assert_allclose(a[0, 1:3], [100 + 4 * 10.0, 50 + 4 * 12.0], atol=1.0)
  np.testing.assert_allclose(a[0, 3:5], [4 * 1.5, 4 * 1.5], rtol=0.15)
  np.testing.assert_allclose(a[1, 0], 0.3, atol=0.03)
  np.testing.assert_allclose(a[1, 1:3], [100 + 4 * 28.0, 50 + 4 * 20.0], atol=1.0)
  assert a[2, 0] < 0.05  # no third mode
  np.testing.assert_allclose(mix[0, 1, 0, 1:3], [180.0, 114.0], atol=1.0)


def test_from_keypoints_weights_and_swaps():
  rng = np.random.default_rng(0)
  kp = rng.uniform(0, 1000, (4, 17, 2)).astype(np.float32)
  conf = np.full((4, 17), 0.6, np.float32)
  mix = gmm.from_keypoints(kp, conf)
  np.testing.assert_allclose(mix[..., 0].sum(-1), 1.0, atol=1e-6)
  np.testing.assert_allclose(mix[0, 4, :, 0], [0.6, 0.2, 0.2], atol=1e-6)  # paired joint
  np.testing.assert_allclose(mix[0, 0, :, 0], [0.6, 0.0, 0.4], atol=1e-6)  # root: no partner
  np.testing.assert_allclose(mix[:, 4, 1, 1:3], kp[:, 1])  # swapped with the right hip
  np.testing.assert_allclose(gmm.best_kernel_mean(mix), kp)
  deg = gmm.from_keypoints(kp)
  np.testing.assert_allclose(deg[..., 0], gmm.degenerate(kp)[..., 0])  # c = 1: (1, 0, 0)


def test_units_and_normalisation():
  mix = gmm.degenerate(np.array([[[500.0, 500.0]]]), std_px=10.0)
  f = gmm.to_file_units(mix, 1000)
  np.testing.assert_allclose(f[..., 0, 3:5], 0.02)
  n = gmm.normalise(f, 1000, 1002)
  np.testing.assert_allclose(n[..., 0, 1:3], [[[0.0, 1.0 - 1.002]]], atol=1e-6)


def test_file_round_trip_and_validation(tmp_path):
  kp = np.random.default_rng(1).uniform(0, 1000, (5, 17, 2))
  mix = gmm.to_file_units(gmm.from_keypoints(kp, np.full((5, 17), 0.8)), 1000)
  path = gmm.write_file(tmp_path / 'x_gmm.npz', {'S1': {'Walking': [mix, None]}}, method='test')
  back = gmm.read_file(path)
  np.testing.assert_array_equal(back['S1']['Walking'][0], mix)
  assert back['S1']['Walking'][1] is None
  bad = mix.copy()
  bad[0, 0, 0, 0] = 0.5
  with pytest.raises(DataFormatError, match='summing to 1'):
    gmm.write_file(tmp_path / 'bad.npz', {'S1': {'Walking': [bad]}}, method='test')
  assert not (tmp_path / 'bad.npz').exists()


def test_h36m_gmm_config_carries_the_mixtures(tmp_path):
  """VideoPose3D CPN file -> GMM file -> the h36m builder's cpn_ft_h36m_dbb_gmm config."""
  import tensorflow_datasets as tfds

  from jaxpose.data import build, sources, synthetic

  manual, data_dir = tmp_path / 'manual', tmp_path / 'tfds'
  manual.mkdir()
  tfds.disable_progress_bar()
  synthetic.write_h36m_vp3d(manual, sources=('cpn_ft_h36m_dbb',))
  conf_src = np.load(manual / 'data_2d_h36m_cpn_ft_h36m_dbb.npz', allow_pickle=True)
  pos = conf_src['positions_2d'].item()
  conf = {
    s: {a: [np.full(v.shape[:2], 0.7, np.float32) for v in views] for a, views in acts.items()}
    for s, acts in pos.items()
  }
  np.savez(manual / 'conf.npz', confidence=np.array(conf, dtype=object))
  from jaxpose.cli import data as data_cli

  src = manual / 'data_2d_h36m_cpn_ft_h36m_dbb.npz'
  dst = manual / 'data_2d_h36m_cpn_ft_h36m_dbb_gmm.npz'
  argv = ['data', 'gmm', str(src), str(dst), f'--conf={manual / "conf.npz"}']
  assert data_cli.main(argv) == 0  # `jaxpose data gmm` = gmm.convert_vp3d_file
  build.build('h36m', 'cpn_ft_h36m_dbb_gmm', manual, data_dir)
  ref = build.dataset_ref('h36m', 'cpn_ft_h36m_dbb_gmm')
  recs = [sources._decode(ex) for ex in tfds.data_source(ref, split='test', data_dir=str(data_dir))]
  rec = next(r for r in recs if r['subject'] == 'S9' and r['action'] == 'Walking')
  cam = ['54138969', '55011271', '58860488', '60457274'].index(rec['camera'])
  t = rec['num_frames']
  mix = rec['kp2d_gmm']
  assert mix.shape == (t, 17, 3, 5)
  np.testing.assert_allclose(mix[..., 0, 0], 0.7, atol=1e-6)
  np.testing.assert_allclose(rec['kp2d_px'], pos['S9']['Walking'][cam][:t], atol=1e-4)
  np.testing.assert_allclose(mix[..., 0, 1:3], rec['kp2d_px'], atol=1e-4)
