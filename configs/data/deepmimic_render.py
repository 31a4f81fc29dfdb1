"""DeepMimic rendered (embedded, built on first use): 4-view 500 px images of a capsule body, 12.5 fps.

H36M-17, the four H36M cameras with S9 extrinsics, no lens distortion; train: 12 clips; test:
cartwheel, punch, walk (tfds_builders/deepmimic_render). Config 'tiny' is a few frames for tests.
Image settings (crop size, views, augmentation) are in the data block's `image` sub-block.
"""

from configs.data import block


def get(**kw):
  return block(
    dict(
      name='deepmimic_render',
      config='',
      train_split='train',
      eval_split='test',
      skeleton='h36m17',
      num_joints=17,
      fps=12.5,
    ),
    kw,
  )
