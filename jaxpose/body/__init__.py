"""SMPL-format bodies in JAX: the body model, a synthetic stand-in, joint regressors, mesh tools.

Submodules:
  smpl        `BodyModel` (a pytree), `load_model` (official .pkl without chumpy/scipy, or .npz),
              `forward` (blend shapes, joint regression, FK, LBS), writers `save_pkl`/`save_npz`.
  synthetic   a deterministic SYNTHETIC model in the SMPL file format ('full': 6890 vertices /
              13776 faces; 'small': 400 / 796), its regressors and file writers. Not SMPL.
  regressors  H36M-17 and SPIN-49 joint sets from vertices; loaders for the users' real regressors.
  mesh        topology, normals, quadric decimation, COMA-style down/up-sampling matrices (and the
              official mesh_downsampling.npz reader), PMCE's coordinate/normal/edge losses.

Imports only jaxpose.geometry, numpy and jax.
"""

from jaxpose.body import mesh, regressors, smpl, synthetic
from jaxpose.body.regressors import JointRegressors, h36m_joints, spin_joints
from jaxpose.body.smpl import BodyModel, BodyOutput, forward, load_model, model_from_arrays
from jaxpose.body.synthetic import synthetic_joint_regressors, synthetic_model

__all__ = [
  'BodyModel',
  'BodyOutput',
  'JointRegressors',
  'forward',
  'h36m_joints',
  'load_model',
  'mesh',
  'model_from_arrays',
  'regressors',
  'smpl',
  'spin_joints',
  'synthetic',
  'synthetic_joint_regressors',
  'synthetic_model',
]
