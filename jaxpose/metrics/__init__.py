"""Pose metrics: pure per-pose functions, jit- and vmap-compatible.

Every function maps (..., J, C) arrays to one value per pose (mean over joints), except `mpjve`,
which gives one value per consecutive frame pair (time on axis -3), and the multi-hypothesis ones,
which reduce the hypothesis axis too. Reduce over the batch, and group by action or sequence, on the
host (see jaxpose.eval.protocols).

Units: MPJPE-type metrics are unit-agnostic and return the unit of their inputs (VideoPose3D works in
metres and reports x1000). PCK/AUC take thresholds in mm, so their inputs must be in mm; both return
percentages.

Bad values: these functions are traced and cannot raise on values. NaN or inf in an input propagates
to the affected poses' results (a NaN joint makes that pose's MPJPE NaN; in PCK a NaN error counts as
not correct because NaN < t is False). A pose whose joints all coincide gives NaN in P-MPJPE and
N-MPJPE (zero norm). Check inputs on the host with `jaxpose.geometry.validation.validate_poses`.
Shape mistakes (mismatched, non-broadcastable shapes) raise at trace time.
"""

from jaxpose.geometry.validation import validate_poses
from jaxpose.metrics.mesh import accel_error, accel_valid, mpvpe, pa_mpvpe, rigid_align
from jaxpose.metrics.multihyp import (
  joint_best_pose,
  mpjpe_best_of,
  mpjpe_joint_best,
  p_mpjpe_best_of,
)
from jaxpose.metrics.multihyp_protocols import protocol_errors, reduce_protocols
from jaxpose.metrics.pck import (
  AUC_THRESHOLDS_MM,
  PCK_JOINTS_3DHP,
  PCK_JOINTS_H36M,
  auc,
  pck,
)
from jaxpose.metrics.pose import (
  joint_errors,
  mpjpe,
  mpjve,
  n_mpjpe,
  n_mpjpe_procrustes_scale,
  p_mpjpe,
  reduce_joints,
)
from jaxpose.metrics.pss import assign_clusters, fit_pss_centers, normalize_pose, pss
from jaxpose.metrics.sampling import (
  best_sample_mpjve,
  calibration_coverage,
  calibration_score,
  min_mpjpe,
  min_p_mpjpe,
)

__all__ = [
  'AUC_THRESHOLDS_MM',
  'PCK_JOINTS_3DHP',
  'PCK_JOINTS_H36M',
  'accel_error',
  'accel_valid',
  'assign_clusters',
  'auc',
  'best_sample_mpjve',
  'calibration_coverage',
  'calibration_score',
  'fit_pss_centers',
  'joint_best_pose',
  'joint_errors',
  'min_mpjpe',
  'min_p_mpjpe',
  'mpjpe',
  'mpjpe_best_of',
  'mpjpe_joint_best',
  'mpjve',
  'mpvpe',
  'n_mpjpe',
  'n_mpjpe_procrustes_scale',
  'normalize_pose',
  'p_mpjpe',
  'p_mpjpe_best_of',
  'pa_mpvpe',
  'pck',
  'protocol_errors',
  'pss',
  'reduce_joints',
  'reduce_protocols',
  'rigid_align',
  'validate_poses',
]
