"""Mean-pose / mean-mesh baseline on deepmimic_smpl, with PMCE's evaluation (jaxpose.methods.pmce).

The prediction for every test frame is the training set's mean root-relative camera-frame pose
(H36M-17) and the mean root-relative mesh of the small synthetic body (the body of the PMCE
experiment run). Metrics as `pmce.eval_metrics`: MPJPE over 17 joints, MPJPE / PA-MPJPE over the
paper's 14, MPVPE / PA-MPVPE (meshes aligned on the body's root joint), acceleration error (a
constant prediction scores the ground truth's own acceleration; first and last frame 0), averaged
over the frames of each test clip (4 cameras) and then over the 3 clips (the engine's H36M
protocol), plus the frame average.

  python experiments/pmce_deepmimic/baseline.py [--data_dir DIR]
"""

from __future__ import annotations

import argparse

import jax.numpy as jnp
import numpy as np

from jaxpose import body as body_lib
from jaxpose.data import sources
from jaxpose.methods import pmce
from jaxpose.metrics import mesh as mesh_metrics
from jaxpose.metrics import pose as pose_metrics

EV = list(pmce.EVAL_JOINTS)


def sequences(split: str, data_dir: str | None):
  store = sources.get_store('deepmimic_smpl', '', split, data_dir)
  for i in range(len(store)):
    yield store.read(i, cache=False)


def meshes(rec, bm, reg, chunk: int = 256) -> np.ndarray:
  """(L, V, 3) metres, root-relative on the mesh-regressed H36M pelvis (as pmce.gt_mesh)."""
  rot = np.asarray(rec['body_rotmat'], np.float32)
  betas = np.broadcast_to(np.asarray(rec['body_betas'], np.float32), (len(rot), 10))
  out = []
  for s in range(0, len(rot), chunk):
    v = np.asarray(body_lib.forward(bm, rot[s : s + chunk], betas[s : s + chunk]).vertices)
    out.append(v - np.einsum('v,lvc->lc', reg[0], v)[:, None])
  return np.concatenate(out)


def main() -> None:
  p = argparse.ArgumentParser()
  p.add_argument('--data_dir', default=None)
  args = p.parse_args()
  bm, reg, _ = pmce.body_setup('synthetic:small')
  root_w = np.asarray(bm.J_regressor[0])
  pose_sum, mesh_sum, n = 0.0, 0.0, 0
  for rec in sequences('train', args.data_dir):
    pose = np.asarray(rec['pose3d_cam'], np.float64)
    pose_sum = pose_sum + (pose - pose[:, :1]).sum(0)
    mesh_sum = mesh_sum + meshes(rec, bm, reg).sum(0, dtype=np.float64)
    n += len(pose)
  mean_pose, mean_mesh = pose_sum / n, mesh_sum / n
  mesh_pred = mean_mesh - root_w @ mean_mesh
  j_pred = reg @ mean_mesh
  j_pred = (j_pred - j_pred[:1])[EV] * 1000
  names = ('mpjpe', 'mpjpe14', 'pmpjpe14', 'mpvpe', 'pa_mpvpe', 'accel')
  err = {k: [] for k in names}
  actions = []
  for rec in sequences('test', args.data_dir):
    actions.append(np.full(len(rec['pose3d_cam']), str(rec['action']), object))
    gt = np.asarray(rec['pose3d_cam'], np.float64)
    gt = gt - gt[:, :1]
    err['mpjpe'].append(np.linalg.norm((mean_pose - gt) * 1000, axis=-1).mean(-1))
    gm = meshes(rec, bm, reg)
    gm = gm - np.einsum('v,lvc->lc', root_w, gm)[:, None]
    gj = np.einsum('kv,lvc->lkc', reg, gm)
    gj = (gj - gj[:, :1])[:, EV] * 1000
    pj = np.broadcast_to(j_pred, gj.shape)
    err['mpjpe14'].append(np.asarray(pose_metrics.mpjpe(pj, gj)))
    err['pmpjpe14'].append(np.asarray(pose_metrics.p_mpjpe(pj, gj)))
    pm = jnp.broadcast_to(jnp.asarray(mesh_pred, jnp.float32), gm.shape)
    err['mpvpe'].append(np.asarray(mesh_metrics.mpvpe(pm, gm)) * 1000)
    err['pa_mpvpe'].append(np.asarray(mesh_metrics.pa_mpvpe(pm, gm)) * 1000)
    w = gt[:, EV] * 1000  # the acceleration GT of eval_metrics: the dataset's H36M-17
    acc = np.zeros(len(w))
    acc[1:-1] = np.asarray(mesh_metrics.accel_error(np.broadcast_to(w[:1], w.shape), w))
    err['accel'].append(acc)
  actions = np.concatenate(actions)
  print(f'{"":>9}  {"clip mean":>9} {"frames":>8}')
  for k, v in err.items():
    v = np.concatenate(v)
    by_clip = np.mean([v[actions == a].mean() for a in sorted(set(actions))])
    print(f'{k:>9}: {by_clip:9.1f} {v.mean():8.1f}')


if __name__ == '__main__':
  main()
