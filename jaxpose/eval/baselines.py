"""Reference numbers a trained lifter must beat: the mean training pose, scored like a model.

`mean_pose_baseline(config, mesh)` predicts, for every test frame, the mean root-relative
camera-frame training pose (metres; no input is looked at) and runs it through the same eval step
and protocol as a trained model, so its MPJPE / P-MPJPE per action sit next to the model's in the
same table. A lifter that does not clearly beat it has learnt little beyond the average pose.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax.numpy as jnp
import ml_collections as mlc
import numpy as np

from jaxpose.data import pipeline
from jaxpose.eval import evaluator
from jaxpose.eval.steps import make_eval_step
from jaxpose.methods.supervised import METHOD as SUPERVISED


def mean_train_pose(config: mlc.ConfigDict) -> np.ndarray:
  """The mean of `pose3d_cam` over every valid frame of data.train_split.

  Returns:
    (J, 3) float32, metres, camera frame, root-relative (the mean over all cameras and frames).
  """
  total, count = None, 0
  for batch in pipeline.eval_batches(config.data, config.data.train_split):
    valid = np.asarray(batch['valid'], bool)  # (B, T)
    poses = np.asarray(batch['pose3d_cam'], np.float64)[valid]  # (N, J, 3)
    total = poses.sum(0) if total is None else total + poses.sum(0)
    count += len(poses)
  if not count:
    raise ValueError(f'split {config.data.train_split!r} of {config.data.name} has no valid frames')
  return (total / count).astype(np.float32)


def mean_pose_baseline(config: mlc.ConfigDict, mesh: Any) -> dict[str, Any]:
  """Evaluates the constant mean-training-pose prediction with the configured protocol.

  Returns:
    The evaluator's result dict (mpjpe_mm, p_mpjpe_mm, per_group, ...), as for a model.
  """
  pose = jnp.asarray(mean_train_pose(config))

  def predict_batch(model, variables, batch, config):
    del model, variables, config
    out_frames = batch['pose3d_cam'].shape[1]
    return jnp.broadcast_to(pose, (batch['pose3d_cam'].shape[0], out_frames, *pose.shape))

  method = dataclasses.replace(SUPERVISED, predict_batch=predict_batch, eval_metrics=_no_metrics)
  step = make_eval_step(None, method, config)
  return evaluator.evaluate(step, {}, config, mesh)


def _no_metrics(model, variables, batch, config) -> dict[str, Any]:
  del model, variables, batch, config
  return {}
