"""Joint regressors: SPIN's 49-joint selection and H36M-17 from vertices."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpose.body import regressors, smpl, synthetic

# Which SMPL joint each body joint of SPIN's list is (written from the joint names, not SPIN's map).
_SPIN_TO_SMPL = {
  'OP Neck': 'neck',
  'OP RShoulder': 'right_shoulder',
  'OP RElbow': 'right_elbow',
  'OP RWrist': 'right_wrist',
  'OP LShoulder': 'left_shoulder',
  'OP LElbow': 'left_elbow',
  'OP LWrist': 'left_wrist',
  'OP MidHip': 'pelvis',
  'OP RHip': 'right_hip',
  'OP RKnee': 'right_knee',
  'OP RAnkle': 'right_ankle',
  'OP LHip': 'left_hip',
  'OP LKnee': 'left_knee',
  'OP LAnkle': 'left_ankle',
  'Right Ankle': 'right_ankle',
  'Right Knee': 'right_knee',
  'Left Knee': 'left_knee',
  'Left Ankle': 'left_ankle',
  'Right Wrist': 'right_wrist',
  'Right Elbow': 'right_elbow',
  'Right Shoulder': 'right_shoulder',
  'Left Shoulder': 'left_shoulder',
  'Left Elbow': 'left_elbow',
  'Left Wrist': 'left_wrist',
}
_SPIN_TO_VERTEX = {
  'OP Nose': 'nose',
  'OP REye': 'right_eye',
  'OP LEye': 'left_eye',
  'OP REar': 'right_ear',
  'OP LEar': 'left_ear',
  'OP LBigToe': 'left_big_toe',
  'OP LSmallToe': 'left_small_toe',
  'OP LHeel': 'left_heel',
  'OP RBigToe': 'right_big_toe',
  'OP RSmallToe': 'right_small_toe',
  'OP RHeel': 'right_heel',
  'Nose': 'nose',
  'Left Eye': 'left_eye',
  'Right Eye': 'right_eye',
  'Left Ear': 'left_ear',
  'Right Ear': 'right_ear',
}
_SPIN_TO_EXTRA = {
  'Right Hip': 'right_hip',
  'Left Hip': 'left_hip',
  'Neck (LSP)': 'neck_lsp',
  'Top of Head (LSP)': 'head_top_lsp',
  'Pelvis (MPII)': 'pelvis_mpii',
  'Thorax (MPII)': 'thorax_mpii',
  'Spine (H36M)': 'spine_h36m',
  'Jaw (H36M)': 'jaw_h36m',
  'Head (H36M)': 'head_h36m',
}


def test_spin_joint_selection_follows_the_joint_names():
  assert len(regressors.SPIN_JOINT_NAMES) == len(regressors.SPIN_JOINT_MAP) == 49
  rng = np.random.default_rng(0)
  joints = rng.normal(size=(2, 24, 3))
  vertices = rng.normal(size=(2, 30, 3))
  ids = rng.permutation(30)[:21]
  extra = rng.dirichlet(np.ones(30), 9)
  regs = regressors.JointRegressors(
    h36m=jnp.zeros((17, 30)), extra=jnp.asarray(extra), vertex_ids=jnp.asarray(ids)
  )
  out = np.asarray(regressors.spin_joints(regs, joints, vertices))
  assert out.shape == (2, 49, 3)
  for k, name in enumerate(regressors.SPIN_JOINT_NAMES):
    if name in _SPIN_TO_SMPL:
      expected = joints[:, smpl.SMPL_JOINT_NAMES.index(_SPIN_TO_SMPL[name])]
    elif name in _SPIN_TO_VERTEX:
      expected = vertices[:, ids[regressors.VERTEX_JOINT_NAMES.index(_SPIN_TO_VERTEX[name])]]
    else:
      expected = np.einsum(
        'v,bvc->bc', extra[regressors.EXTRA_JOINT_NAMES.index(_SPIN_TO_EXTRA[name])], vertices
      )
    np.testing.assert_allclose(out[:, k], expected, atol=1e-5, err_msg=name)


def test_h36m_evaluation_subsets():
  names = regressors.H36M_JOINT_NAMES
  scored = {names[i] for i in regressors.PMCE_H36M_EVAL14}
  assert scored == set(names) - {'pelvis', 'spine', 'neck'}
  spin = [names[i] for i in regressors.SPIN_H36M_TO_J14]
  # SPIN's LSP order lists the arms right before left, like the VideoPose3D names of those rows.
  assert spin[6:12] == [
    'right_wrist',
    'right_elbow',
    'right_shoulder',
    'left_shoulder',
    'left_elbow',
    'left_wrist',
  ]
  assert spin[12:] == ['thorax', 'head'] and sorted(regressors.SPIN_H36M_TO_J14[:6]) == [
    1,
    2,
    3,
    4,
    5,
    6,
  ]


def test_synthetic_regressors_follow_the_posed_body():
  model = synthetic.synthetic_model('small')
  regs = synthetic.synthetic_joint_regressors('small')
  pose = np.zeros((1, 24, 3), np.float32)
  pose[0, 18] = (0.0, -1.5, 0.0)  # bend the left elbow
  out = smpl.forward(model, pose)
  rest = smpl.forward(model, np.zeros((1, 24, 3), np.float32))
  h36m = np.asarray(regressors.h36m_joints(regs, out.vertices))
  h36m_rest = np.asarray(regressors.h36m_joints(regs, rest.vertices))
  names = regressors.H36M_JOINT_NAMES
  moved = np.linalg.norm(h36m - h36m_rest, axis=-1)[0]
  assert moved[names.index('left_wrist')] > 0.15
  assert moved[names.index('right_wrist')] < 1e-5 and moved[names.index('pelvis')] < 1e-5
  # The regressed wrist follows the FK wrist (they coincide at rest).
  wrist = smpl.SMPL_JOINT_NAMES.index('left_wrist')
  np.testing.assert_allclose(
    h36m_rest[0, names.index('left_wrist')], rest.joints[0, wrist], atol=1e-5
  )
  assert np.linalg.norm(h36m[0, names.index('left_wrist')] - out.joints[0, wrist]) < 0.02
  spin = jax.jit(regressors.spin_joints)(regs, out.joints, out.vertices)
  assert spin.shape == (1, 49, 3) and np.all(np.isfinite(spin))


def test_smpl_regressors_loader(tmp_path):
  np.save(tmp_path / 'h36m.npy', np.full((17, 6890), 1 / 6890))
  np.save(tmp_path / 'extra.npy', np.full((9, 6890), 1 / 6890))
  regs = regressors.smpl_regressors(tmp_path / 'h36m.npy', tmp_path / 'extra.npy')
  assert regs.h36m.shape == (17, 6890) and regs.extra.shape == (9, 6890)
  assert tuple(np.asarray(regs.vertex_ids)) == regressors.SMPL_VERTEX_JOINT_IDS
  with pytest.raises(
    ValueError, match=r'extra.npy: regressor has shape \(9, 6890\), expected \(17, 6890\)'
  ):
    regressors.smpl_regressors(tmp_path / 'extra.npy', tmp_path / 'extra.npy')
