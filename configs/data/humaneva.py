"""HumanEva-I (VideoPose3D npz): 15 joints, 60 Hz, train Train/S1-S3, test Validate/S1-S3.

config: '' = gt (15 input joints); detectron_pt_coco has 17 COCO input joints (num_joints=17) and
15 output joints.
"""

from configs.data import block


def get(**kw):
  j = 17 if kw.get('config') == 'detectron_pt_coco' else 15
  return block(
    dict(
      name='humaneva',
      config='',
      train_split='train',
      eval_split='test',
      skeleton='humaneva15',
      num_joints=j,
      fps=60.0,
    ),
    kw,
  )
