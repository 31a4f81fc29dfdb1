"""The jitted eval step: per-frame errors of a method's prediction, for `evaluator.evaluate`."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
import ml_collections as mlc

from jaxpose import metrics
from jaxpose.geometry import skeleton as skel
from jaxpose.methods.base import Method


def make_eval_step(model, method: Method, config: mlc.ConfigDict) -> Callable:
  """eval_step(variables, batch) -> {'pred': (B,T,J,3), 'mpjpe_mm': (B,T), 'p_mpjpe_mm': (B,T)}
  (plus 'pck150' and 'auc' (B,T) in percent for the 3DHP protocol).

  Errors are per frame, in millimetres, root-relative (the prediction's root is moved to the
  origin, as the MotionAGFormer/MotionBERT evaluators do). `scale_2_5d` undoes MotionBERT's 2.5D
  normalisation (1.0 for metric datasets). Single-output-frame models are scored on the window's
  centre frame. Image batches (`jaxpose.data.image_pipeline`: pose3d_cam (B, J, 3) metres, no
  scale_2_5d) are one frame per row: the method's `predict_batch` returns (B, 1, J, 3).
  """
  root = skel.get(config.data.skeleton).root
  pck_joints = (
    metrics.PCK_JOINTS_H36M if config.data.skeleton == 'h36m17' else metrics.PCK_JOINTS_3DHP
  )
  per_frame = lambda f: jax.vmap(jax.vmap(f))  # (J, 3) metric -> (B, T)

  def eval_step(variables, batch):
    # predict on kp2d_norm, or a method's own use of the batch (UAO: camera and root)
    pred = method.predict_batch(model, variables, batch, config)
    gt = batch['pose3d_cam']
    if gt.ndim == 3:  # image batches (B, J, 3): one frame per row, T_out = 1, metres
      gt = gt[:, None]
    scale = batch['scale_2_5d'] if 'scale_2_5d' in batch else jnp.ones(gt.shape[:2], gt.dtype)
    if pred.shape[1] != gt.shape[1]:  # seq2frame: the centre frame of the window
      c = gt.shape[1] // 2
      gt, scale = gt[:, c : c + 1], scale[:, c : c + 1]
    scale = scale[:, :, None, None] * 1000.0  # -> mm
    pred_mm = (pred - pred[..., root : root + 1, :]) * scale
    gt_mm = (gt - gt[..., root : root + 1, :]) * scale
    out = {
      'pred': pred,
      'mpjpe_mm': per_frame(metrics.mpjpe)(pred_mm, gt_mm),
      'p_mpjpe_mm': per_frame(metrics.p_mpjpe)(pred_mm, gt_mm),
    }
    out.update(method.eval_metrics(model, variables, batch, config))  # extra (B, T_out) metrics
    if config.eval.protocol == 'mpi_inf_3dhp':
      out['pck150'] = per_frame(partial(metrics.pck, joints=pck_joints))(pred_mm, gt_mm)
      out['auc'] = per_frame(partial(metrics.auc, joints=pck_joints))(pred_mm, gt_mm)
    return out

  return jax.jit(eval_step)
