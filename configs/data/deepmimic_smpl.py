"""DeepMimic on the synthetic SMPL-format body (embedded, built on first use): H36M-17 regressed
from the mesh, body parameters (body_rotmat, body_betas, body_transl, has_smpl), 50 Hz, 4 H36M
cameras (S9). train: 12 clips; test: cartwheel, punch, walk (tfds_builders/deepmimic_smpl).
"""

from configs.data import block


def get(**kw):
  return block(
    dict(
      name='deepmimic_smpl',
      config='',
      train_split='train',
      eval_split='test',
      skeleton='h36m17',
      num_joints=17,
      fps=50.0,
    ),
    kw,
  )
