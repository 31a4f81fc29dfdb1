"""The complete base config schema. Every key any jaxpose config may set is declared here.

Paper configs start from `get_base_config()`, assign declared keys only, and return the config
locked, so a typo (in a file or on the command line) fails with the list of valid keys.
`model.kwargs` and `method.kwargs` are the open blocks: model kwargs are checked against the named
Model's dataclass fields when the model is built (`jaxpose.models.build`), which lists the valid
fields on error; method kwargs are read by the method, which documents its defaults.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import Any

import ml_collections as mlc


def data_block(**overrides: Any) -> mlc.ConfigDict:
  """Dataset block; `configs/data/<name>.py:get()` returns values for these keys."""
  d = mlc.ConfigDict(
    dict(
      name='deepmimic',  # TFDS builder name (tfds_builders/<name>)
      config='',  # builder config ('' = the builder's default)
      data_dir='',  # '' -> $JAXPOSE_DATA_DIR or ~/jaxpose_datasets
      train_split='train',
      eval_split='test',
      skeleton='h36m17',
      num_joints=17,
      frames=27,  # window length T
      stride=27,  # train window stride in frames (seq2seq)
      mode='seq2seq',  # 'seq2seq' | 'center' (single output frame)
      use_conf=True,  # append the 2D confidence as a third input channel
      flip_aug=True,
      batch_size=16,  # global
      eval_batch_size=16,  # global, fixed so eval steps trace once
      num_workers=0,
      fps=50.0,
      # 'center' mode: also give the whole window's 3D as pose3d_cam_window (B, T, J, 3), for
      # losses on every frame of a single-output model (MPM/P-STMO's VTE term).
      window_targets=False,
      # Image datasets (metadata kind 'image', jaxpose/data/image_pipeline.py); flips follow
      # flip_aug above. Defaults: EpipolarPose's recipe (research/epipolarpose.md §6).
      image=mlc.ConfigDict(
        dict(
          size=256,  # crop side, pixels
          views=1,  # views per training example (>1: multi-view batches (B, V, ...))
          crop='box',  # 'box' (EpipolarPose) or a crop registered with image_pipeline.register_crop
          bbox_mm=2000.0,  # side of the square around the root that the box crop frames
          augment=True,  # training augmentation on/off (never at evaluation)
          scale_aug=0.25,  # scale = 1 + scale_aug * clip(N(0, 1), -1, 1)
          rot_aug_deg=30.0,  # rotation = rot_aug_deg * clip(N(0, 1), -2, 2) degrees ...
          rot_prob=0.6,  # ... with this probability
          color_aug=0.2,  # per-channel colour factor U(1 - color_aug, 1 + color_aug)
          occlusion=0.0,  # probability of synthetic occluders per view
          occluder_max=7,  # 1 .. occluder_max occluders
          part_labels=True,  # decode and warp part masks (part_label_u8) when the data has them
        )
      ),
    )
  )
  d.update(overrides)
  return d


def dataset(name: str, **kw: Any) -> mlc.ConfigDict:
  """The data block of `configs/data/<name>.py:get(**kw)`; an unknown name lists the valid ones."""
  import importlib
  import pkgutil

  from configs import data as data_pkg

  valid = sorted(m.name for m in pkgutil.iter_modules(data_pkg.__path__))
  if name not in valid:
    raise ValueError(f'Unknown dataset {name!r}; valid: {", ".join(valid)}')
  return data_block(**importlib.import_module(f'configs.data.{name}').get(**kw))


def get_base_config() -> mlc.ConfigDict:
  c = mlc.ConfigDict()
  c.seed = 0
  c.data = data_block()
  c.model = mlc.ConfigDict(dict(name='motionagformer', variant='xs'))
  c.model.kwargs = mlc.ConfigDict()  # open: checked against the Model's fields at build time
  c.method = mlc.ConfigDict(dict(name='supervised'))
  # Open like model.kwargs: a method's own hyperparameters (diffusion steps, hypotheses, masking
  # ratios, TTO iterations ...), read by the method with its documented defaults.
  c.method.kwargs = mlc.ConfigDict()
  # Loss term weights by name (jaxpose/losses.py); zero-weight terms are not computed.
  c.method.loss = mlc.ConfigDict(
    dict(
      mpjpe=1.0,
      w_mpjpe=0.0,
      n_mpjpe=0.0,
      velocity=0.0,
      temporal_consistency=0.0,
      reprojection_2d=0.0,
    )
  )
  c.optim = mlc.ConfigDict(
    dict(name='adamw', lr=5e-4, weight_decay=0.01, b1=0.9, b2=0.999, eps=1e-8, grad_clip=0.0)
  )
  # type: 'exponential_epoch' (lr * decay**epoch, the papers' per-epoch decay),
  # 'multistep_epoch' (lr * decay at each epoch in milestones), 'cosine', 'constant';
  # warmup_steps of linear warm-up precede any of them.
  c.schedule = mlc.ConfigDict(
    dict(type='exponential_epoch', decay=0.99, warmup_steps=0, milestones=())
  )
  c.train = mlc.ConfigDict(
    dict(
      epochs=0,  # if > 0, total_steps = epochs * steps_per_epoch
      total_steps=100,
      steps_per_epoch=0,  # 0 = one pass over the train windows
      log_every=10,
      eval_every=0,  # 0 = only at the end
      ckpt_every=50,
      keep_ckpts=2,
      best_metric='mpjpe_mm',
      allow_config_change=False,  # resume a workdir whose config.json differs
      progress=True,
      # 'bfloat16': the training step's Linear and attention matmuls take bfloat16 operands and
      # accumulate in float32 (jaxpose/models/layers/matmul.py); weights, optimiser and every other
      # op stay float32. About 1.5x faster training steps for the T=243 lifters on CPUs with
      # AMX / AVX512-BF16 (experiments/torch_vs_jax); evaluation stays float32. Other dots keep
      # the backend's default precision ('bfloat16' is jax's alias of DEFAULT: bf16 passes on TPU,
      # TF32 on recent NVIDIA GPUs, float32 on CPU), as they do without this setting.
      matmul_precision='float32',
    )
  )
  c.eval = mlc.ConfigDict(dict(flip_test=True, protocol='h36m', max_batches=0))
  # Several processes (README "Several hosts"): num_processes N with coordinator_address
  # 'host:port' and process_id per process, or without an address (-1: any count) JAX detects the
  # cluster (Cloud TPU, Slurm, Open MPI). process_id and coordinator_address may differ on resume.
  c.mesh = mlc.ConfigDict(dict(num_processes=1, process_id=0, coordinator_address=''))
  c.init_from = mlc.ConfigDict(dict(path='', format=''))  # format: 'orbax' | 'torch'
  return c


def locked(c: mlc.ConfigDict) -> mlc.ConfigDict:
  c.lock()
  return c


def parse_arg(arg: str | None, **defaults: Any) -> mlc.ConfigDict:
  """Parses 'xs,smoke,data=deepmimic' into {'variant': 'xs', 'smoke': True, 'data': 'deepmimic'}.

  Bare words set boolean flags named in `defaults`; a bare word that is not a flag is the variant.
  """
  out = dict(defaults)
  for tok in filter(None, (arg or '').split(',')):
    if '=' in tok:
      k, v = tok.split('=', 1)
      if k not in out:
        raise ValueError(f'Unknown config arg {k!r} in {arg!r}; valid: {", ".join(out)}')
      out[k] = type(out[k])(v) if not isinstance(out[k], bool) else v.lower() in ('1', 'true')
    elif isinstance(out.get(tok), bool):
      out[tok] = True
    else:
      out['variant'] = tok
  return mlc.ConfigDict(out)


def start(arg: str | None, model: str, variants: Iterable[str], **flags: Any):
  """Parses a paper config's arg and starts its config: returns (args, base config with the model).

  `arg` is 'variant[,smoke][,data=name][,flag...]'; the first of `variants` is the default, and an
  unknown variant raises a ValueError listing the valid ones. `flags` declares extra arg flags.
  """
  variants = list(variants)
  a = parse_arg(arg, variant=variants[0], smoke=False, data='h36m', **flags)
  if a.variant not in variants:
    raise ValueError(f'Unknown {model} variant {a.variant!r}; valid: {", ".join(variants)}')
  c = get_base_config()
  c.model.name, c.model.variant = model, a.variant
  return a, c


def finish(
  c: mlc.ConfigDict,
  a: mlc.ConfigDict,
  smoke_frames: int | None = None,
  smoke_model: Mapping[str, Any] | None = None,
) -> mlc.ConfigDict:
  """Applies `smoke(c, smoke_frames, smoke_model)` when `a.smoke`, and locks."""
  if a.smoke:
    if smoke_frames is None:
      raise ValueError(f'{c.model.name}: the smoke config needs smoke_frames and smoke_model')
    smoke(c, smoke_frames, smoke_model or {})
  return locked(c)


def h36m_2d(data: str, source: str = 'cpn_ft_h36m_dbb') -> str:
  """The h36m builder config for a 2D source, or the dataset's default for other datasets."""
  return source if data == 'h36m' else ''


def smoke(c: mlc.ConfigDict, frames: int, model: Mapping[str, Any]) -> mlc.ConfigDict:
  """Shrinks a run to seconds on a CPU: a tiny model, the embedded deepmimic data, tiny steps.

  Pure data, like every config: the paper config declares the tiny sizes (normally its model's
  `TEST_OVERRIDES`) and the window length that tiny model takes; tests/configs checks that the
  built model takes `frames` frames.

  Args:
    c: the config (unlocked).
    frames: T of the tiny model's input windows (data.frames and data.stride).
    model: model.kwargs overrides of the tiny model (width, depth, window length ...).
  """
  with c.model.kwargs.unlocked():
    c.model.kwargs.update(dict(model))
  from configs.data import deepmimic

  c.data.update(deepmimic.get(frames=frames, stride=frames))
  c.data.batch_size = c.data.eval_batch_size = 8
  c.train.epochs, c.train.total_steps = 0, 4
  c.train.log_every, c.train.ckpt_every, c.train.eval_every = 2, 2, 0
  c.eval.max_batches = 2
  return c


# Sweeps: lists of {dotted.key: value} dicts (scenic/vmoe `hyper` convention, local shim).
def sweep(key: str, values: Iterable[Any]) -> list[dict[str, Any]]:
  return [{key: v} for v in values]


def product(*sweeps: list[dict[str, Any]]) -> list[dict[str, Any]]:
  return [
    dict(itertools.chain.from_iterable(d.items() for d in combo))
    for combo in itertools.product(*sweeps)
  ]


def zipit(*sweeps: list[dict[str, Any]]) -> list[dict[str, Any]]:
  lens = {len(s) for s in sweeps}
  if len(lens) > 1:
    raise ValueError(f'zipit needs sweeps of equal length, got {sorted(lens)}')
  return [dict(itertools.chain.from_iterable(d.items() for d in combo)) for combo in zip(*sweeps)]


def chainit(*sweeps: list[dict[str, Any]]) -> list[dict[str, Any]]:
  return [d for s in sweeps for d in s]


def apply_overrides(c: mlc.ConfigDict, overrides: Mapping[str, Any]) -> mlc.ConfigDict:
  """Applies {dotted.key: value} to a locked config; unknown keys raise with the valid keys."""
  for key, value in overrides.items():
    parent, parts = c, key.split('.')
    for p in parts[:-1]:
      if p not in parent:
        raise KeyError(f'Unknown config key {key!r}: {p!r} is not one of {sorted(parent.keys())}')
      parent = parent[p]
    name = parts[-1]
    is_open = parent is c.model.kwargs or parent is c.method.kwargs
    if name not in parent and not is_open:
      raise KeyError(f'Unknown config key {key!r}; valid keys here: {sorted(parent.keys())}')
    if is_open:
      with parent.unlocked():
        parent[name] = value
    else:
      parent[name] = value
  return c
