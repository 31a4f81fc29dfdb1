"""Plots: 3D skeletons (prediction beside ground truth) and learning curves. Uses the Agg backend."""

from __future__ import annotations

import pathlib
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from jaxpose.geometry import skeleton as skel  # noqa: E402


def draw_pose3d(
  ax, pose: np.ndarray, skeleton: str = 'h36m17', color: str = 'k', title: str = ''
) -> None:
  """pose: (J, 3) metres, camera frame (x right, y down, z forward); drawn with y up."""
  sk = skel.get(skeleton)
  p = np.asarray(pose, np.float64)
  # camera frame -> plot frame: x right, z (depth) into the page, -y up
  xs, ys, zs = p[:, 0], p[:, 2], -p[:, 1]
  right = set(sk.right)
  for j, parent in enumerate(sk.parents):
    if parent < 0:
      continue
    c = color if j not in right else _darker(color)
    ax.plot([xs[j], xs[parent]], [ys[j], ys[parent]], [zs[j], zs[parent]], color=c, lw=2)
  ax.scatter(xs, ys, zs, color=color, s=6)
  r = max(np.ptp(xs), np.ptp(ys), np.ptp(zs), 1e-3) / 2 * 1.1
  cx, cy, cz = xs.mean(), ys.mean(), zs.mean()
  ax.set_xlim(cx - r, cx + r)
  ax.set_ylim(cy - r, cy + r)
  ax.set_zlim(cz - r, cz + r)
  ax.set_xticklabels([])
  ax.set_yticklabels([])
  ax.set_zticklabels([])
  ax.set_title(title, fontsize=9)


def _darker(color: str) -> str:
  return {'tab:blue': 'navy', 'tab:red': 'darkred', 'k': 'dimgray'}.get(color, color)


def learning_curve(ax, rows: Sequence[dict[str, Any]]) -> None:
  """rows: metrics.jsonl records. Train loss per step, and eval MPJPE on a second axis."""
  tr = [(r['step'], r['loss']) for r in rows if r.get('loss') is not None]
  ev = [(r['step'], r['eval/mpjpe_mm']) for r in rows if r.get('eval/mpjpe_mm') is not None]
  if tr:
    s, v = zip(*tr)
    ax.plot(s, v, color='tab:blue', label='train loss')
  ax.set_xlabel('step')
  ax.set_ylabel('train loss', color='tab:blue')
  ax.set_yscale('log')
  if ev:
    ax2 = ax.twinx()
    s, v = zip(*ev)
    ax2.plot(s, v, 'o-', color='tab:red', label='eval MPJPE (mm)')
    ax2.set_ylabel('eval MPJPE (mm)', color='tab:red')
  ax.set_title('learning curve', fontsize=10)


def main_job_figure(
  rows: Sequence[dict[str, Any]],
  pred: np.ndarray,
  gt: np.ndarray,
  out: str | pathlib.Path,
  title: str = '',
  skeleton: str = 'h36m17',
) -> None:
  """Learning curve | predicted 3D | ground-truth 3D, for one test frame. pred, gt: (J, 3)."""
  fig = plt.figure(figsize=(13, 4.2))
  learning_curve(fig.add_subplot(1, 3, 1), rows)
  err = float(np.linalg.norm(pred - gt, axis=-1).mean() * 1000)
  draw_pose3d(
    fig.add_subplot(1, 3, 2, projection='3d'),
    pred,
    skeleton,
    'tab:red',
    f'prediction (MPJPE {err:.0f} mm)',
  )
  draw_pose3d(fig.add_subplot(1, 3, 3, projection='3d'), gt, skeleton, 'k', 'ground truth')
  if title:
    fig.suptitle(title, fontsize=11)
  fig.tight_layout()
  fig.savefig(out, dpi=110)
  plt.close(fig)


def draw_pose2d(ax, kp2d: np.ndarray, skeleton: str = 'h36m17', color: str = 'tab:blue') -> None:
  """kp2d: (J, 2+) normalised screen coordinates (x right, y down)."""
  sk = skel.get(skeleton)
  for j, parent in enumerate(sk.parents):
    if parent >= 0:
      ax.plot(kp2d[[j, parent], 0], -kp2d[[j, parent], 1], color=color, lw=2)
  ax.set_aspect('equal')
  ax.axis('off')


def demo_figure(
  kp2d: np.ndarray, pose3d: np.ndarray, out: str | pathlib.Path, panels: int = 6
) -> None:
  """Evenly spaced frames: 2D input (top row) and lifted 3D (bottom row)."""
  idx = np.linspace(0, len(kp2d) - 1, panels).astype(int)
  fig = plt.figure(figsize=(2.6 * panels, 5.4))
  for i, t in enumerate(idx):
    ax = fig.add_subplot(2, panels, i + 1)
    draw_pose2d(ax, kp2d[t])
    ax.set_title(f'frame {t}', fontsize=9)
    draw_pose3d(
      fig.add_subplot(2, panels, panels + i + 1, projection='3d'),
      pose3d[t] - pose3d[t, :1],
      'h36m17',
      'tab:red',
    )
  fig.tight_layout()
  fig.savefig(out, dpi=100)
  plt.close(fig)
