"""3DPW (official sequenceFiles): SMPL-24 joints projected to 2D, 30 Hz; train/validation/test."""

from configs.data import block


def get(**kw):
  return block(
    dict(
      name='pw3d',
      config='',
      train_split='train',
      eval_split='test',
      skeleton='smpl24',
      num_joints=24,
      fps=30.0,
    ),
    kw,
  )
