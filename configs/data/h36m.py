"""Human3.6M: H36M-17, 50 Hz; train S1 S5 S6 S7 S8, test S9 S11 (tfds_builders/h36m).

config: '' = cpn_ft_h36m_dbb; gt, detectron_ft_h36m, detectron_pt_coco (2D in COCO-17 order, still
17 input joints), sh (MotionBERT's SH pickle: confidence, 2.5D targets with scale_2_5d).
"""

from configs.data import block


def get(**kw):
  return block(
    dict(
      name='h36m',
      config='',
      train_split='train',
      eval_split='test',
      skeleton='h36m17',
      num_joints=17,
      fps=50.0,
    ),
    kw,
  )
