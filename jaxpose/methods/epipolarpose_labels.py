"""EpipolarPose's offline pseudo-labels: teacher 2D -> epipolar geometry -> pseudo-3D per view pair.

Paper: Kocabas, Karagoz, Akbas, CVPR 2019, arXiv:1903.02330, §3.1-3.2 (research/epipolarpose.md
§3). The official repo (github.com/mkocabas/EpipolarPose @ 299ccb0) does **not** release this step
(issues #17, #19, #26: the authors triangulated offline and shipped `train-ss.pkl`); it is
reconstructed here from the paper with `jaxpose.geometry.epipolar` and `.triangulation`. Host-side
numpy, run once before self-supervised training (`jaxpose pseudolabel`, jaxpose/cli/pseudolabel.py):

  1. `teacher_keypoints`: the 2D teacher (the integral network trained on 2D only, method mode
     'teacher') over every (frame, camera) of the training split, on the evaluation crop (no
     augmentation); its x, y decoded to full-image pixels through the crop's inverse.
  2. `make_pseudo_labels`, for every pair of cameras (a, b), a < b:
     ss     (no extrinsics): one relative pose (R, t), |t| = 1, per camera pair and pool
            (`pseudo_pool`: 'subject' (default), 'take', 'split'; 'frame' = one F per frame from
            its 17 joints, the paper's literal reading) by `epipolar.pooled_relative_pose`:
            F (`pseudo_estimator`, RANSAC with `pseudo_threshold_px`) -> E = K_b^T F K_a ->
            cheirality -> robust Sampson refinement; then polynomial (optimal) triangulation with
            P_a = K_a [I | 0], P_b = K_b [R | t]: 3D in camera-a coordinates at the pool's
            arbitrary scale; camera b's copy is R X + t.
     ss_rt  ("with R/t"): triangulation with the known extrinsics (iterative-LS, as the official
            dead-code `self_supervision`), metric; each camera's copy is its own R X_world + t.
     A sample is valid when every joint is finite and in front of both cameras.
  3. `save_labels` writes one npz (atomically); `train_iterator` attaches the labels of each
     training example's two views (`Attach`), to be re-encoded on device with each view's
     augmented crop (`jaxpose.methods.epipolarpose.encode_pose_labels`, scale-invariant).

The report (`quality`) compares the pseudo-labels with the ground truth, which is used for nothing
else: N-MPJPE (EpipolarPose's Procrustes-scale definition) and P-MPJPE of the pseudo-3D in camera
a, MPJPE for ss_rt, and per camera pair the rotation and translation-direction errors (degrees)
of the recovered relative pose, the RANSAC inlier ratio and the teacher's 2D error (pixels).

Labels file (npz): pose3d (N, P, 2, J, 3) float32, each view of pair p in its own camera frame
(absolute; arbitrary scale for ss, metres for ss_rt; NaN where invalid), valid (N, P) bool,
pairs (P, 2) int32 (camera indices a < b), meta (JSON: dataset, config, split, num_records,
num_views, num_joints, mode, settings, teacher, quality). N = records of the split (synchronised
frames, `image_pipeline.FrameStore` order).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import pathlib
from collections.abc import Sequence
from typing import Any

import jax
import ml_collections as mlc
import numpy as np

from jaxpose import metrics
from jaxpose.data import image_pipeline, images, pipeline
from jaxpose.data.images import imagenet_normalize
from jaxpose.geometry import epipolar, triangulation
from jaxpose.methods import epipolarpose as ep

POOLS = ('split', 'subject', 'take', 'frame')


class LabelsError(ValueError):
  """A pseudo-label file does not fit the configured dataset (or is missing)."""


@dataclasses.dataclass
class TeacherOutput:
  """The teacher's 2D and the ground truth of every (record, view) of a split.

  Attributes:
    kp2d_px: (N, V, J, 2) teacher 2D, full-image pixels.
    gt_kp2d_px: (N, V, J, 2) ground-truth 2D, full-image pixels (report only).
    K: (N, V, 3, 3) intrinsics; R, t: (N, V, 3, 3), (N, V, 3) world -> camera (metres).
    gt_pose3d: (N, V, J, 3) ground-truth camera-frame 3D, metres, absolute (report only).
    groups: {'subject', 'take'}: (N,) group ids of each record for pooling.
    cameras: V camera names.
  """

  kp2d_px: np.ndarray
  gt_kp2d_px: np.ndarray
  K: np.ndarray
  R: np.ndarray
  t: np.ndarray
  gt_pose3d: np.ndarray
  groups: dict[str, np.ndarray]
  cameras: tuple[str, ...]


def teacher_keypoints(
  model, variables: dict[str, Any], data_cfg: mlc.ConfigDict, split: str | None = None
) -> TeacherOutput:
  """Runs the 2D teacher over every (frame, camera) of `split` (default data.train_split).

  Args:
    model: the integral network (`jaxpose.models.epipolarpose.Model`).
    variables: its variables ({'params', 'batch_stats'}), e.g. a teacher run's checkpoint.
    data_cfg: the config's data block (an image dataset); crops are the evaluation crops.
    split: the split to label.

  Returns:
    TeacherOutput over the split's records (FrameStore order).
  """
  split = split or data_cfg.train_split
  store = image_pipeline.get_store(data_cfg, split)
  n, v, j = len(store), store.num_views, int(data_cfg.num_joints)
  nan = lambda *s: np.full(s, np.nan)  # noqa: E731
  kp, gt_kp, gt3 = nan(n, v, j, 2), nan(n, v, j, 2), nan(n, v, j, 3)
  kk, rr, tt = nan(n, v, 3, 3), nan(n, v, 3, 3), nan(n, v, 3)
  seen = np.zeros((n, v), bool)

  @jax.jit
  def apply(variables, image_u8):
    return model.apply(variables, imagenet_normalize(image_u8), train=False)['pose_norm']

  for batch in pipeline.eval_batches(data_cfg, split):
    pn = np.asarray(apply(variables, batch['image_u8']), np.float64)
    size = batch['image_u8'].shape[-2]
    uv = (pn[..., :2] + 0.5) * size
    for i in np.flatnonzero(batch['seq_id'] >= 0):
      take = store.takes[int(batch['seq_id'][i]) // store.num_views]
      rec = int(take['records'][int(batch['frame_idx'][i, 0])])
      view = int(batch['view_id'][i])
      inv = np.linalg.inv(np.asarray(batch['crop_from_full'][i], np.float64))
      kp[rec, view] = images.apply_h(inv, uv[i])
      gt_kp[rec, view] = images.apply_h(inv, np.asarray(batch['kp2d_px'][i], np.float64))
      gt3[rec, view] = batch['pose3d_cam'][i] + batch['pose3d_root'][i]
      kk[rec, view], rr[rec, view], tt[rec, view] = (
        batch['K_full'][i],
        batch['cam_R'][i],
        batch['cam_t'][i],
      )
      seen[rec, view] = True
  if not seen.all():
    rec, view = np.argwhere(~seen)[0]
    raise RuntimeError(f'{store.what(int(rec), int(view))} was not evaluated by the teacher')
  subjects = {s: i for i, s in enumerate(sorted({t['subject'] for t in store.takes}))}
  return TeacherOutput(
    kp2d_px=kp,
    gt_kp2d_px=gt_kp,
    K=kk,
    R=rr,
    t=tt,
    gt_pose3d=gt3,
    groups={
      'take': store.record_take.copy(),
      'subject': np.array([subjects[store.takes[k]['subject']] for k in store.record_take]),
    },
    cameras=tuple(store.takes[0]['cameras']) if store.takes else (),
  )


def _camera(k: np.ndarray, what: str) -> np.ndarray:
  """The one intrinsics matrix of a static camera over a group of records (T, 3, 3)."""
  if not np.allclose(k, k[:1], rtol=1e-6, atol=1e-6):
    raise LabelsError(f'{what}: intrinsics change between frames; pool by take or frame instead')
  return k[0]


def _pool_ids(teacher: TeacherOutput, pool: str) -> np.ndarray:
  n = teacher.kp2d_px.shape[0]
  if pool == 'split':
    return np.zeros(n, np.int64)
  if pool == 'frame':
    return np.arange(n)
  if pool in teacher.groups:
    return teacher.groups[pool]
  raise ValueError(f'pseudo_pool={pool!r}; valid: {", ".join(POOLS)}')


def _front(x_a: np.ndarray, x_b: np.ndarray) -> np.ndarray:
  """(T,) every joint finite and in front of both cameras."""
  ok = np.isfinite(x_a).all((-1, -2)) & np.isfinite(x_b).all((-1, -2))
  with np.errstate(invalid='ignore'):
    return ok & (x_a[..., 2] > 0).all(-1) & (x_b[..., 2] > 0).all(-1)


def _pair_ss(teacher, recs, a, b, s, seed, root, what):
  """Pseudo-3D of one pool and camera pair without extrinsics: (x_a, x_b, info)."""
  u_a, u_b = teacher.kp2d_px[recs, a], teacher.kp2d_px[recs, b]
  k_a = _camera(teacher.K[recs, a], f'{what} camera {a}')
  k_b = _camera(teacher.K[recs, b], f'{what} camera {b}')
  rel = epipolar.pooled_relative_pose(
    u_a,
    u_b,
    k_a,
    k_b,
    estimator=s['pseudo_estimator'],
    seed=seed,
    threshold_px=float(s['pseudo_threshold_px']),
    pair=(f'{what}: {teacher.cameras[a]}', teacher.cameras[b]),
  )
  if (s['pseudo_triangulation'] or 'polynomial') != 'polynomial':
    raise ValueError(
      f"pseudo_triangulation={s['pseudo_triangulation']!r}: without extrinsics the paper's "
      "pipeline triangulates with 'polynomial'"
    )
  p_a = triangulation.projection_matrix(k_a, np.eye(3), np.zeros(3))
  p_b = triangulation.projection_matrix(k_b, rel.R, rel.t)
  x_a = triangulation.triangulate_polynomial(u_a, p_a, u_b, p_b, where=what)
  x_b = x_a @ rel.R.T + rel.t
  return x_a, x_b, {'R': rel.R, 't': rel.t, 'inlier_ratio': float(rel.inliers.mean())}


def _pair_rt(teacher, recs, a, b, s, root, what):
  """Pseudo-3D of one camera pair triangulated with the known extrinsics (metres)."""
  u = np.stack([teacher.kp2d_px[recs, a], teacher.kp2d_px[recs, b]], axis=1)  # (T, 2, J, 2)
  proj = np.stack(
    [
      [
        triangulation.projection_matrix(teacher.K[r, c], teacher.R[r, c], teacher.t[r, c])
        for c in (a, b)
      ]
      for r in recs
    ]
  )
  method = s['pseudo_triangulation'] or 'iterative_ls'  # the official `self_supervision`'s
  if method == 'polynomial':
    xw = np.stack(
      [
        triangulation.triangulate_polynomial(u[i, 0], proj[i, 0], u[i, 1], proj[i, 1], where=what)
        for i in range(len(recs))
      ]
    )
  elif method == 'iterative_ls':
    xw, _ = triangulation.triangulate_iterative_ls(u, proj, where=what)
  else:
    raise ValueError(f'pseudo_triangulation={method!r}; valid: polynomial, iterative_ls')
  cam = lambda c: np.einsum('tij,tnj->tni', teacher.R[recs, c], xw) + teacher.t[recs, c][:, None]  # noqa: E731
  r_rel, t_rel = epipolar.relative_pose_from_extrinsics(
    teacher.R[recs[0], a], teacher.t[recs[0], a], teacher.R[recs[0], b], teacher.t[recs[0], b]
  )
  return cam(a), cam(b), {'R': r_rel, 't': t_rel / np.linalg.norm(t_rel), 'inlier_ratio': 1.0}


def make_pseudo_labels(
  teacher: TeacherOutput,
  mode: str,
  settings: dict[str, Any],
  *,
  root: int = 0,
  seed: int = 0,
  pairs: Sequence[tuple[int, int]] | None = None,
) -> dict[str, Any]:
  """Pseudo-3D of every record for every camera pair (see the module docstring).

  Args:
    teacher: `teacher_keypoints` of the split.
    mode: 'ss' (no extrinsics) or 'ss_rt' (with R/t).
    settings: the method settings (`epipolarpose.settings`): pseudo_estimator, pseudo_pool,
      pseudo_threshold_px, pseudo_triangulation.
    root: root joint index.
    seed: seed of the robust estimators.
    pairs: camera index pairs (a < b); default every pair.

  Returns:
    {'pose3d' (N, P, 2, J, 3) float32, 'valid' (N, P) bool, 'pairs' (P, 2) int32,
     'quality': report dict (see `quality`)}.
  """
  if mode not in ('ss', 'ss_rt'):
    raise ValueError(f"pseudo-labels are for modes 'ss' and 'ss_rt', got {mode!r}")
  n, v, j, _ = teacher.kp2d_px.shape
  pairs = [tuple(p) for p in (pairs or itertools.combinations(range(v), 2))]
  out = np.full((n, len(pairs), 2, j, 3), np.nan)
  pools = _pool_ids(teacher, settings['pseudo_pool'] if mode == 'ss' else 'split')
  per_pair: list[dict[str, Any]] = []
  for p, (a, b) in enumerate(pairs):
    for g in np.unique(pools):
      recs = np.flatnonzero(pools == g)
      what = f'pool {settings["pseudo_pool"]} {int(g)}, cameras ({a}, {b})'
      try:
        if mode == 'ss':
          x_a, x_b, info = _pair_ss(teacher, recs, a, b, settings, seed + p, root, what)
        else:
          x_a, x_b, info = _pair_rt(teacher, recs, a, b, settings, root, what)
      except ValueError:
        if settings['pseudo_pool'] != 'frame':
          raise
        continue  # a degenerate single frame: left invalid
      ok = _front(x_a, x_b)
      out[recs[ok], p, 0], out[recs[ok], p, 1] = x_a[ok], x_b[ok]
      r_gt, t_gt = epipolar.relative_pose_from_extrinsics(
        teacher.R[recs[0], a], teacher.t[recs[0], a], teacher.R[recs[0], b], teacher.t[recs[0], b]
      )
      cos_t = float(np.dot(info['t'], t_gt) / np.linalg.norm(t_gt))
      per_pair.append(
        {
          'pair': [a, b],
          'pool': int(g),
          'frames': len(recs),
          'valid': int(ok.sum()),
          'rot_err_deg': epipolar.rotation_angle_deg(info['R'], r_gt),
          't_dir_err_deg': float(np.degrees(np.arccos(np.clip(cos_t, -1, 1)))),
          'inlier_ratio': info['inlier_ratio'],
        }
      )
  valid = np.isfinite(out).all((2, 3, 4))
  res = {'pose3d': out.astype(np.float32), 'valid': valid, 'pairs': np.array(pairs, np.int32)}
  res['quality'] = quality(teacher, res, per_pair, mode, root)
  return res


def quality(
  teacher: TeacherOutput, labels: dict[str, Any], per_pair: list[dict], mode: str, root: int
) -> dict[str, Any]:
  """Pseudo-label quality against the ground truth (report only; never used for training).

  Returns:
    {'teacher_2d_err_px': mean 2D error of the teacher (full-image pixels), 'valid_fraction',
     'n_mpjpe_mm' (Procrustes-scale, EpipolarPose's), 'p_mpjpe_mm', 'mpjpe_mm' (ss_rt only;
     ss: after the least-squares scale fit, Rhodin's N-MPJPE), 'per_pair': [{pair, rot_err_deg,
     t_dir_err_deg, inlier_ratio, n_mpjpe_mm, ...}]}, millimetres and degrees.
  """
  err2d = np.linalg.norm(teacher.kp2d_px - teacher.gt_kp2d_px, axis=-1)
  res: dict[str, Any] = {'teacher_2d_err_px': float(np.nanmean(err2d))}
  pose, valid, pairs = labels['pose3d'].astype(np.float64), labels['valid'], labels['pairs']
  res['valid_fraction'] = float(valid.mean())
  rows = {'n_mpjpe_mm': [], 'p_mpjpe_mm': [], 'mpjpe_mm': [], 'rhodin_n_mpjpe_mm': []}
  by_pair = {}
  for p, (a, _) in enumerate(pairs):
    ok = valid[:, p]
    if not ok.any():
      continue
    pred = pose[ok, p, 0] - pose[ok, p, 0, root : root + 1]
    gt = teacher.gt_pose3d[ok, a] - teacher.gt_pose3d[ok, a, root : root + 1]
    m = {
      'n_mpjpe_mm': np.asarray(metrics.n_mpjpe_procrustes_scale(pred, gt * 1000, root=root)),
      'p_mpjpe_mm': np.asarray(metrics.p_mpjpe(pred, gt * 1000)),
      'rhodin_n_mpjpe_mm': np.asarray(metrics.n_mpjpe(pred, gt * 1000)),
      'mpjpe_mm': np.asarray(metrics.mpjpe(pred * 1000, gt * 1000)),
    }
    for k, x in m.items():
      rows[k].append(x)
    by_pair[p] = {k: float(x.mean()) for k, x in m.items()}
  for k, x in rows.items():
    if mode == 'ss' and k == 'mpjpe_mm':
      continue  # arbitrary scale: MPJPE is meaningless without extrinsics
    res[k] = float(np.concatenate(x).mean()) if x else float('nan')
  res['per_pair'] = []
  for p, pair in enumerate(pairs.tolist()):
    rows_p = [r for r in per_pair if r['pair'] == pair]
    if not rows_p:
      continue
    rot = np.array([r['rot_err_deg'] for r in rows_p])
    agg = {
      'pair': pair,
      'pools': len(rows_p),
      'frames': int(sum(r['frames'] for r in rows_p)),
      'valid': int(sum(r['valid'] for r in rows_p)),
      'rot_err_deg': float(rot.mean()),
      'rot_err_deg_median': float(np.median(rot)),
      't_dir_err_deg': float(np.mean([r['t_dir_err_deg'] for r in rows_p])),
      'inlier_ratio': float(np.mean([r['inlier_ratio'] for r in rows_p])),
    }
    extra = {k: w for k, w in by_pair.get(p, {}).items() if mode == 'ss_rt' or k != 'mpjpe_mm'}
    res['per_pair'].append({**agg, **extra})
  return res


# ------------------------------------------------------------------------------------------------
# file


def save_labels(
  path: str | pathlib.Path, labels: dict[str, Any], meta: dict[str, Any]
) -> pathlib.Path:
  """Writes the labels npz atomically (a temporary file renamed into place)."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  info = {**meta, 'quality': labels['quality']}
  tmp = path.with_name(path.name + '.tmp.npz')
  with open(tmp, 'wb') as f:
    np.savez(
      f,
      pose3d=labels['pose3d'],
      valid=labels['valid'],
      pairs=labels['pairs'],
      meta=np.asarray(json.dumps(info, default=float)),
    )
  tmp.replace(path)
  return path


def label_meta(config: mlc.ConfigDict, store: image_pipeline.FrameStore) -> dict[str, Any]:
  """What a labels file must match: dataset, split, record and view counts, joints, mode."""
  s = ep.settings(config)
  return {
    'dataset': store.name,
    'config': store.config,
    'split': store.split,
    'num_records': len(store),
    'num_views': store.num_views,
    'num_joints': int(config.data.num_joints),
    'mode': s['mode'],
  }


def load_labels(path: str | pathlib.Path, expect: dict[str, Any]) -> dict[str, Any]:
  """Reads a labels npz and checks its meta against `expect` (`label_meta`).

  Raises:
    LabelsError: missing file or key, or a meta value that differs (naming the file, key,
      expected and actual value).
  """
  path = pathlib.Path(path)
  if not str(path) or not path.is_file():
    raise LabelsError(
      f'pseudo-label file {str(path)!r} not found (method.kwargs.labels); make it with:\n  '
      'jaxpose pseudolabel --config <the same config> --config.method.kwargs.teacher=<teacher '
      'workdir> --config.method.kwargs.labels=<file>'
    )
  with np.load(path, allow_pickle=False) as z:
    missing = {'pose3d', 'valid', 'pairs', 'meta'} - set(z.files)
    if missing:
      raise LabelsError(f'{path}: missing keys {sorted(missing)} (keys: {z.files})')
    out = {k: np.asarray(z[k]) for k in ('pose3d', 'valid', 'pairs')}
    meta = json.loads(str(z['meta']))
  for k, want in expect.items():
    if meta.get(k) != want:
      raise LabelsError(f'{path}: meta {k!r} is {meta.get(k)!r}, the config expects {want!r}')
  n, p = out['valid'].shape
  if out['pose3d'].shape != (n, p, 2, expect['num_joints'], 3) or out['pairs'].shape != (p, 2):
    raise LabelsError(
      f'{path}: pose3d {out["pose3d"].shape} / pairs {out["pairs"].shape} do not match valid '
      f'{out["valid"].shape} and {expect["num_joints"]} joints'
    )
  out['meta'] = meta
  return out


# ------------------------------------------------------------------------------------------------
# training iterator


class Attach:
  """grain map over image batches: adds pseudo3d (b, 2, J, 3) and pseudo_valid (b,) of each
  example's two views (the pipeline's record, take and view ids), reordered to the views' order.
  Invalid samples get a harmless placeholder pose (every joint at (0, 0, 1)) and valid False."""

  def __init__(self, labels: dict[str, Any], store: image_pipeline.FrameStore):
    self.pose3d, self.valid = labels['pose3d'], labels['valid']
    self.index = {(int(a), int(b)): p for p, (a, b) in enumerate(labels['pairs'])}
    self.records = [t['records'] for t in store.takes]
    self.num_views = store.num_views

  def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    b = len(batch['seq_id'])
    j = self.pose3d.shape[-2]
    pose = np.zeros((b, 2, j, 3), np.float32)
    pose[..., 2] = 1.0
    ok = np.zeros(b, bool)
    for i in range(b):
      take = int(batch['seq_id'][i]) // self.num_views
      rec = int(self.records[take][int(batch['frame_idx'][i, 0])])
      v0, v1 = (int(x) for x in batch['view_id'][i])
      p = self.index.get((min(v0, v1), max(v0, v1)))
      if p is None or not self.valid[rec, p]:
        continue
      pair = self.pose3d[rec, p]
      pose[i] = pair if v0 < v1 else pair[::-1]
      ok[i] = True
    return {**batch, 'pseudo3d': pose, 'pseudo_valid': ok}


def train_iterator(
  config: mlc.ConfigDict, *, seed: int, process_index: int = 0, process_count: int = 1
) -> pipeline.TrainIterator:
  """Two-view training batches with the pseudo-labels of method.kwargs.labels attached.

  Raises:
    ValueError: data.image.views != 2 or data.flip_aug on (the labels are not mirrored; the
      paper's recipe has no flip); LabelsError: see `load_labels`.
  """
  if int(config.data.image.views) != 2:
    raise ValueError(
      f'self-supervised EpipolarPose trains on view pairs: set data.image.views=2 (got '
      f'{config.data.image.views})'
    )
  if config.data.flip_aug:
    raise ValueError(
      'self-supervised EpipolarPose: set data.flip_aug=False (no flip, as the paper)'
    )
  store = image_pipeline.get_store(config.data, config.data.train_split)
  labels = load_labels(ep.settings(config)['labels'], label_meta(config, store))
  ds = image_pipeline.train_dataset(
    config.data, seed=seed, process_index=process_index, process_count=process_count
  ).map(Attach(labels, store))
  return pipeline.TrainIterator(ds, int(config.data.num_workers), prefetch=4, seed=int(seed))


__all__ = [
  'POOLS',
  'Attach',
  'LabelsError',
  'TeacherOutput',
  'label_meta',
  'load_labels',
  'make_pseudo_labels',
  'quality',
  'save_labels',
  'teacher_keypoints',
  'train_iterator',
]
