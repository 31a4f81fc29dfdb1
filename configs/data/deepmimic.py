"""DeepMimic (embedded, built from pybullet on first use): H36M-17, 50 Hz, 4 H36M cameras (S9).

train: 12 clips; test: cartwheel, punch, walk (tfds_builders/deepmimic).
"""

from configs.data import block


def get(**kw):
  return block(
    dict(
      name='deepmimic',
      config='',
      train_split='train',
      eval_split='test',
      skeleton='h36m17',
      num_joints=17,
      fps=50.0,
    ),
    kw,
  )
