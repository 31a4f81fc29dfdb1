"""MPI-INF-3DHP: 3DHP-17 order (root 14), train S1-S8, test TS1-TS6 with valid masks.

config: '' = gt (P-STMO's npz, univ_annot3 3D); annot3 (D3DP's and PoSynDA's `*_3dhp_ori.npz`: the
real-skeleton annot3 3D, official pixel test cameras), e.g. `get(config='annot3')`.
Train sequences are 25 or 50 Hz (per record); the papers treat the data as 50 Hz.
"""

from configs.data import block


def get(**kw):
  return block(
    dict(
      name='mpi_inf_3dhp',
      config='',
      train_split='train',
      eval_split='test',
      skeleton='mpi3dhp17',
      num_joints=17,
      fps=50.0,
    ),
    kw,
  )
