"""MPM (arXiv 2306.17201): masked pose modelling pre-training, then P-STMO fine-tuning.

Run book (both stages use `method.name = 'mpm'`, which picks the network from `data.mode`):
  jaxpose train --config configs/mpm.py:pretrain --workdir runs/mpm_pretrain
    Stage 1, README `pretrainer.py --MAE -f 243 -k gt --n_joints 17 -b 1024 -tds 2 --layers 4
    --lr 1e-4 -lrd 0.97 -tmr 0.6 -smn 5`: H36M GT 2D + GT 3D, seq2seq windows of 243 frames at
    stride 1, 5 joints masked per frame, int(243 * 0.6) = 145 frames dropped, loss
    5 L2D + 2 L3D, Adam (amsgrad) lr 1e-4 x0.97 per epoch, 49 epochs, batch 1024.
    Needs the engine to build `jaxpose.methods.mpm.make_model(config)` (the pre-training network)
    instead of the registry model; see the module docstring of jaxpose/methods/mpm.py.
  jaxpose train --config configs/mpm.py --workdir runs/mpm_ft
    Stage 2, README `trainer.py -f 243 -k cpn_ft_h36m_dbb --n_joints 17 -b 1024 --lr 7e-4
    -lrd 0.97 --layers 4 -tds 2 --MAEreload 1`: one 243-frame window per frame ('center'), loss
    MPJPE(VTE, all frames) + MPJPE(centre), Adam (amsgrad) lr 7e-4 x0.97 per epoch, 49 epochs,
    no flip test (the README evaluation commands do not pass --test_augmentation). Start from the
    stage-1 encoder with `jaxpose.methods.mpm.load_pretrained_encoder`. `:gt` uses GT 2D.
  jaxpose train --config configs/mpm.py:pretrain,smoke --workdir /tmp/mpm_smoke  (seconds, CPU)

Masking settings are `config.method.kwargs` (`jaxpose.methods.mpm.DEFAULTS`: spatial_mask_num 5,
temporal_mask_rate 0.6, decoder_layers 1, pretext_weights), e.g.
`--config.method.kwargs.spatial_mask_num=2`.

Not reproduced by the data pipeline yet: the temporal downsampling `-tds 2` (a 243-frame window
spanning 485 frames), the VTE term in fine-tuning (it needs the 3D of every input frame of a
'center' window, batch key `pose3d_cam_window`; without it only the centre term is trained), the
3DHP setting (16 joints in H36M-16 order, 2D divided by 1000) and the optional refine stage (GT
root and intrinsics).
"""

from __future__ import annotations

from configs import common

# Window length of each variant (jaxpose/models/mpm.py VARIANTS; tests/configs checks them).
FRAMES = {'h36m_f243': 243, 'h36m_f243_l3': 243, '3dhp_f243': 243, 'h36m_f81': 81, 'h36m_f27': 27}
# The smoke run (`:smoke`): the model at its test size (TEST_OVERRIDES of jaxpose/models/mpm.py)
# and the window length that tiny model takes. Declared here so configs stay pure data.
SMOKE_MODEL = {'num_frames': 27, 'layers': 1, 'channel': 16, 'd_hid': 32}
SMOKE_FRAMES = 27

REFERENCE = {
  'source': 'MPM, arXiv 2306.17201 (v2) Tab. 1 (H36M) and the 3DHP table; the numbers are not '
  'verified (research/mpm.md section 3), so none are recorded here',
}


def get_config(arg: str | None = None):
  a = common.parse_arg(arg, variant='h36m_f243', pretrain=False, gt=False, smoke=False, data='h36m')
  if a.variant not in FRAMES:
    raise ValueError(f'Unknown MPM variant {a.variant!r}; valid: {", ".join(FRAMES)}')
  t = FRAMES[a.variant]
  c = common.get_base_config()
  c.model.name, c.model.variant = 'mpm', a.variant
  c.method.name = 'mpm'
  with c.method.kwargs.unlocked():  # declared, so --config.method.kwargs.<key>= can override them
    c.method.kwargs.update(spatial_mask_num=5, temporal_mask_rate=0.6, decoder_layers=1)
  c.optim.update(name='adam_amsgrad', weight_decay=0.0)
  c.schedule.update(type='exponential_epoch', decay=0.97)
  c.train.epochs = 49
  c.eval.flip_test = False
  gt_2d = a.pretrain or a.gt
  kw = dict(frames=t, stride=1, use_conf=False, batch_size=1024, eval_batch_size=256)
  if a.data == 'h36m':
    kw['config'] = 'gt' if gt_2d else ''
  if a.pretrain:
    c.data = common.dataset(a.data, mode='seq2seq', **kw)
    c.optim.lr = 1e-4
  else:
    c.data = common.dataset(a.data, mode='center', window_targets=True, **kw)
    c.optim.lr = 7e-4
  if a.smoke:
    common.smoke(c, SMOKE_FRAMES, SMOKE_MODEL)
  return common.locked(c)


def get_sweep(arg: str | None = None):
  """Receptive field against accuracy: the official T = 27 / 81 / 243 settings (3 layers)."""
  del arg
  variants = ['h36m_f27', 'h36m_f81', 'h36m_f243_l3']
  return common.zipit(
    common.sweep('model.variant', variants),
    common.sweep('data.frames', [FRAMES[v] for v in variants]),
  )
