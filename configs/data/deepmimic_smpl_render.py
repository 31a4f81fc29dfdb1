"""DeepMimic on the synthetic SMPL-format body, rendered (embedded, built on first use): 4 views.

H36M-17 regressed from the mesh, the four H36M cameras with S9 extrinsics, no lens distortion, part
labels (`jaxpose.body.parts`) and per-view body parameters (tfds_builders/deepmimic_smpl_render).
Config 'default': the 'small' body at 224 px, 32 frames of each train clip and 16 of each test clip
(cartwheel, punch, walk); 'full': the 6890-vertex body; 'tiny': a few frames for tests. Image
settings (crop size, augmentation) are in the data block's `image` sub-block.
"""

from configs.data import block


def get(**kw):
  return block(
    dict(
      name='deepmimic_smpl_render',
      config='',
      train_split='train',
      eval_split='test',
      skeleton='h36m17',
      num_joints=17,
      fps=12.5,
    ),
    kw,
  )
