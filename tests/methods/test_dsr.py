"""DSR method functions on hand-made inputs: label preparation, the semantic losses and the body
losses' masking and weighting (the official numbers are in tests/parity/test_dsr_parity.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpose.methods import dsr

L = {name: i for i, name in enumerate(dsr.GRPH_LABELS)}


# ------------------------------------------------------------------------------------------------
# labels


def test_grph_to_labels_reads_the_palette():
  rgb = np.zeros((2, 3, 3), np.uint8)
  rgb[0, 0] = (255, 170, 0)  # rightShoe
  rgb[0, 1] = (0, 119, 221)  # coat
  rgb[1, 2] = (1, 2, 3)  # not a Graphonomy colour
  got = dsr.grph_to_labels(rgb)
  np.testing.assert_array_equal(got, [[L['rightShoe'], L['coat'], 0], [0, 0, dsr.UNKNOWN_LABEL]])
  with pytest.raises(ValueError, match=r'expected \(H, W, 3\) RGB, got shape \(2, 3\)'):
    dsr.grph_to_labels(rgb[..., 0])


def test_remove_background_box_margin_and_axis_quirk():
  labels = np.full((10, 40), 5, np.int32)  # H = 10, W = 40
  kp = np.array([[12.0, 4.0], [20.0, 5.0], [39.0, 9.0]])
  conf = np.array([1.0, 1.0, 0.2])  # the last keypoint is ignored (conf <= 0.3)
  got = dsr.remove_background(labels, kp, conf, margin=3)
  want = np.zeros_like(labels)
  # x in [12 - 3, min(20 + 3, H = 10)) -- the x limit is clipped with the height (official);
  # y in [4 - 3, min(5 + 3, W = 40)).
  want[1:8, 9:10] = 5
  np.testing.assert_array_equal(got, want)
  np.testing.assert_array_equal(labels, 5)  # input untouched
  np.testing.assert_array_equal(dsr.remove_background(labels, kp, np.zeros(3)), labels)


def test_mc_target_threshold_is_strictly_more_than_60_pixels():
  labels = np.zeros((20, 20), np.int32)
  labels.flat[:60] = L['leftShoe']  # exactly 60: dropped
  labels.flat[100:161] = L['face']  # 61: kept
  labels.flat[200:300] = L['pants']  # not a minimally clothed label
  mask, valid, counts = dsr.mc_target(labels)
  np.testing.assert_array_equal(counts, [60, 0, 0, 0, 61])
  np.testing.assert_array_equal(valid, [False, False, False, False, True])
  np.testing.assert_array_equal(mask, (labels == L['face']).astype(np.float32))


def test_class_weights_take_n_min_from_classes_of_at_least_60():
  w = dsr.class_weights(np.array([100, 60, 0, 120, 61, 59]))
  np.testing.assert_allclose(w, [0.6, 0.0, 0.0, 0.5, 60 / 61, 0.0], rtol=1e-6)
  np.testing.assert_array_equal(dsr.class_weights(np.array([10, 0, 59])), 0.0)


def test_c_target_merges_labels_and_ignores_unknown_colours():
  labels = np.array([[L['hair'], L['face'], L['coat']], [L['leftShoe'], -1, L['skirt']]])
  c_label, weight, counts = dsr.c_target(labels)
  np.testing.assert_array_equal(c_label, [[1, 1, 2], [6, 0, 3]])
  np.testing.assert_array_equal(counts, [0, 2, 1, 1, 0, 0, 1, 0])
  np.testing.assert_array_equal(weight, 0.0)  # no class reaches 60 pixels


def test_distance_map_is_the_distance_to_the_nearest_mask_pixel():
  rng = np.random.default_rng(0)
  mask = (rng.random((9, 11)) > 0.9).astype(np.float32)
  mask[4, 5] = 1
  ys, xs = np.nonzero(mask)
  gy, gx = np.mgrid[:9, :11]
  brute = np.sqrt((gy[..., None] - ys) ** 2 + (gx[..., None] - xs) ** 2).min(-1)
  np.testing.assert_allclose(dsr.distance_map(mask), brute, rtol=1e-6)
  np.testing.assert_array_equal(dsr.distance_map(np.zeros((3, 4))), 0.0)


def test_textures_from_the_prior():
  prior = dsr.synthetic_semantic_prior(50, seed=3)
  np.testing.assert_allclose(prior.sum(1), 1.0, rtol=1e-5)
  valid = np.array([True, False, True, False, True])  # leftShoe, leftArm, face
  np.testing.assert_allclose(
    dsr.mc_texture(prior, valid), prior[:, [L['leftShoe'], L['leftArm'], L['face']]].sum(1)
  )
  np.testing.assert_array_equal(dsr.mc_texture(prior, np.zeros(5, bool)), 0.0)
  tex_c = dsr.c_textures(prior)
  assert tex_c.shape == (8, 50)
  np.testing.assert_allclose(tex_c.sum(0), 1.0, rtol=1e-5)  # the merge is a partition
  np.testing.assert_allclose(tex_c[6], prior[:, L['leftLeg']] + prior[:, L['leftShoe']])


def test_load_semantic_prior_squeezes_and_validates(tmp_path):
  prior = dsr.synthetic_semantic_prior(7)
  np.save(tmp_path / 'semantic_prior.npy', prior[:, None, :])
  np.testing.assert_array_equal(dsr.load_semantic_prior(tmp_path / 'semantic_prior.npy'), prior)
  with pytest.raises(ValueError, match=r'shape \(7, 20\), expected \(13776, 20\)'):
    dsr.load_semantic_prior(tmp_path / 'semantic_prior.npy', num_faces=13776)


def test_prepare_labels_end_to_end():
  h = w = 80
  labels = np.zeros((h, w), np.int32)
  labels[30:40, 40:50] = L['face']  # 100 px
  labels[40:70, 35:55] = L['upperclothes']
  labels[5, 5] = L['hat']  # outside the keypoint box (x, y in [20, 80)): removed
  kp = np.array([[50.0, 50.0], [60.0, 60.0]])
  out = dsr.prepare_labels(labels, kp, np.ones(2), dsr.synthetic_semantic_prior(5))
  assert out['dsr_mc_valid'].tolist() == [False, False, False, False, True]
  assert out['dsr_mc_mask'].sum() == 100 and out['dsr_mc_mask'].dtype == np.float32
  assert out['dsr_c_label'][5, 5] == 0 and out['dsr_c_label'][35, 45] == 1
  assert out['dsr_c_label'][50, 40] == 2 and out['dsr_c_weight'][1] == 1.0
  assert out['dsr_mc_dist'][35, 45] == 0 and out['dsr_mc_dist'][47, 45] == 8.0
  assert out['dsr_texture_mc'].shape == (5,)
  batch = dsr.stack_labels([out, out])
  assert batch['dsr_c_label'].shape == (2, h, w) and batch['dsr_c_weight'].shape == (2, 8)


# ------------------------------------------------------------------------------------------------
# semantic losses


def test_rowwise_and_image_niou_on_a_hand_example():
  p = jnp.array([[1.0, 0.5], [0.0, 0.0]])
  t = jnp.array([[1.0, 1.0], [0.0, 0.0]])
  # row 0: inter 1.5, union 2 (+1e-6); row 1: 0 / 1e-6 = 0, an empty row counts as IoU 0.
  np.testing.assert_allclose(dsr.neg_iou_rowwise(p, t), 1 - (1.5 / (2 + 1e-6)) / 2, rtol=1e-6)
  np.testing.assert_allclose(dsr.neg_iou_image(p, t), 1 - 1.5 / (2 + 1e-6), rtol=1e-6)
  # batched: 1e-6 on both, mean over the first axis
  pb, tb = jnp.stack([p, t]), jnp.stack([t, t])
  want = 1 - ((1.5 + 1e-6) / (2 + 1e-6) + (2 + 1e-6) / (2 + 1e-6)) / 2
  np.testing.assert_allclose(dsr.neg_iou_batched(pb, tb), want, rtol=1e-6)


def test_distance_map_loss_on_rgb_sums():
  p = jnp.array([[[0.2, 0.4], [0.0, 1.0]]])
  d = jnp.array([[[0.0, 1.0], [2.0, 3.0]]])
  want = 3 * (0.4 + 3.0) / ((3 * 1.6) ** 1.5 + 1e-6)
  np.testing.assert_allclose(dsr.distance_map_loss(p, d), [want], rtol=1e-6)
  with pytest.raises(ValueError, match='needs dist'):
    dsr.dsr_mc_loss(p, p, loss_type='DistM')
  with pytest.raises(ValueError, match="niou must be one of \\('rowwise', 'image'\\)"):
    dsr.dsr_mc_loss(p, p, niou='pixel')


def _c_inputs(seed=0, b=2, h=3, w=4):
  rng = np.random.default_rng(seed)
  prob = rng.random((b, h, w, 8)).astype(np.float32)
  label = rng.integers(0, 8, size=(b, h, w))
  weight = rng.random((b, 8)).astype(np.float32)
  return prob, label, weight


def test_dsr_c_loss_is_weighted_cross_entropy_on_probabilities_as_logits():
  prob, label, weight = _c_inputs()
  got = dsr.dsr_c_loss(jnp.asarray(prob), jnp.asarray(label), jnp.asarray(weight))
  for i in range(2):
    logp = prob[i] - np.log(np.exp(prob[i]).sum(-1, keepdims=True))
    nll = -np.take_along_axis(logp, label[i][..., None], -1)[..., 0]
    wy = weight[i][label[i]]
    np.testing.assert_allclose(got[i], (wy * nll).sum() / wy.sum(), rtol=1e-5)


def _batch_labels(b=3, h=3, w=4):
  prob, label, weight = _c_inputs(b=b, h=h, w=w)
  weight[1] = 0.0  # all-zero class weights: NaN officially, zeroed
  valid = np.ones((b, 5), bool)
  valid[2] = False  # no minimally clothed label: skipped
  mask = (np.random.default_rng(1).random((b, h, w)) > 0.5).astype(np.float32)
  labels = {
    'dsr_mc_mask': mask,
    'dsr_mc_valid': valid,
    'dsr_c_label': label,
    'dsr_c_weight': weight,
    'dsr_mc_dist': np.ones((b, h, w), np.float32),
  }
  mc = np.random.default_rng(2).random((b, h, w)).astype(np.float32)
  return jnp.asarray(mc), jnp.asarray(prob), {k: jnp.asarray(v) for k, v in labels.items()}


def test_dsr_losses_skip_invalid_and_non_finite_samples_but_average_over_the_batch():
  mc, prob, labels = _batch_labels()
  out = dsr.dsr_losses(mc, prob, labels)
  full_mc = dsr.neg_iou_rowwise(mc, labels['dsr_mc_mask'])
  full_c = dsr.dsr_c_loss(prob, labels['dsr_c_label'], labels['dsr_c_weight'])
  assert np.isnan(full_c[1])
  np.testing.assert_allclose(out['dsr_mc_per_sample'], [full_mc[0], 0.0, 0.0], rtol=1e-6)
  np.testing.assert_allclose(out['dsr_c_per_sample'], [full_c[0], 0.0, 0.0], rtol=1e-6)
  np.testing.assert_allclose(out['dsr_mc'], full_mc[0] / 3, rtol=1e-6)
  np.testing.assert_allclose(out['dsr_c'], full_c[0] / 3, rtol=1e-6)


def test_dsr_losses_gradients_are_finite():
  mc, prob, labels = _batch_labels()

  def f(mc, prob):
    out = dsr.dsr_losses(mc, prob, labels)
    return out['dsr_mc'] + out['dsr_c']

  gm, gp = jax.grad(f, argnums=(0, 1))(mc, prob)
  assert np.isfinite(gm).all() and np.isfinite(gp).all()
  assert np.abs(gm[0]).sum() > 0 and np.abs(gp[0]).sum() > 0
  np.testing.assert_array_equal(gm[1:], 0.0)


def test_semantic_render_channels():
  tex_mc = jnp.arange(6.0).reshape(2, 3)
  tex_c = jnp.arange(24.0).reshape(8, 3) + 100
  colors = dsr.semantic_face_colors(tex_mc, tex_c)
  assert colors.shape == (2, 3, 9)
  np.testing.assert_array_equal(colors[..., 0], tex_mc)
  np.testing.assert_array_equal(colors[1, :, 1:], tex_c.T)
  # the official stack: per sample MC then 8 classes, RGBA; probabilities are RGB means
  rendered = np.random.default_rng(0).random((2 * 9, 4, 5, 6)).astype(np.float32)
  mc, c = dsr.split_official_render(rendered)
  np.testing.assert_allclose(mc[1], rendered[9, :3].mean(0), rtol=1e-6)
  np.testing.assert_allclose(c[1, ..., 7], rendered[17, :3].mean(0), rtol=1e-6)
  with pytest.raises(ValueError, match='not a multiple of 9'):
    dsr.split_official_render(rendered[:10])


# ------------------------------------------------------------------------------------------------
# body losses


def test_masked_mean_and_2d_confidence_split():
  np.testing.assert_allclose(dsr.masked_mean(jnp.array([1.0, 3.0]), jnp.array([0, 1])), 3.0)
  assert float(dsr.masked_mean(jnp.array([1.0, 3.0]), jnp.array([0, 0]))) == 0.0
  gt = jnp.concatenate([jnp.zeros((1, 49, 2)), jnp.ones((1, 49, 1))], -1)
  pred = jnp.zeros((1, 49, 2)).at[0, :25].set(5.0)  # OpenPose joints: weight 0 by default
  np.testing.assert_array_equal(dsr.keypoint_2d_loss(pred, gt), [0.0])
  np.testing.assert_allclose(dsr.keypoint_2d_loss(pred, gt, openpose_weight=1.0), [25 * 50 / 98])


def test_keypoint_3d_loss_is_invariant_to_a_shared_translation_of_each_pose():
  rng = np.random.default_rng(0)
  pred = jnp.asarray(rng.normal(size=(2, 49, 3)), jnp.float32)
  gt = jnp.asarray(np.concatenate([rng.normal(size=(2, 24, 3)), np.ones((2, 24, 1))], -1))
  base = dsr.keypoint_3d_loss(pred, gt)
  moved = dsr.keypoint_3d_loss(pred + jnp.array([1.0, -2.0, 3.0]), gt.at[..., :3].add(0.5))
  np.testing.assert_allclose(moved, base, rtol=1e-5)
  assert float(base[0]) > 0


def test_total_loss_weights_and_late_start():
  terms = {
    'keypoints': 1.0,
    'keypoints_3d': 2.0,
    'regr_pose': 3.0,
    'regr_betas': 4.0,
    'shape': 5.0,
    'cam': 6.0,
    'dsr_mc': 7.0,
    'dsr_c': 8.0,
  }
  w = dsr.LossWeights()
  base = 5 * 1 + 5 * 2 + 3 + 0.001 * 4 + 0 * 5 + 6
  np.testing.assert_allclose(dsr.total_loss(terms, w), 60 * (base + 0.1 * 7 + 0.1 * 8))
  np.testing.assert_allclose(dsr.total_loss(terms, w, start_dsr=False), 60 * base)
