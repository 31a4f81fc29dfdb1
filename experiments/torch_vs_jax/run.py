"""Is jaxpose as fast as the official PyTorch code? Same weights, same core, same step, alternated.

For each model this builds the OFFICIAL PyTorch module from a local checkout of its repository
(path in an environment variable; the code is imported from there, never vendored), initialises it
with torch's own init (seeded), loads those weights into jaxpose through
`jaxpose.convert.load_official`, checks the two outputs agree, and then times, alternating torch and
jaxpose round by round (so a change of machine load hits both alike):

  infer   the forward pass in eval mode (torch: `torch.no_grad()`; jaxpose: jitted `apply`);
  train   one full training step: forward in train mode (the paper's dropout / DropPath), the loss,
          backward, and an AdamW update (torch.optim.AdamW / optax.adamw, same lr and decay). The
          loss is MPJPE (mean Euclidean joint error) on both sides, against a fixed random target.

Both sides run in this one process pinned to the same cores (`--cores`, via sched_setaffinity)
with `--threads` intra-op threads (torch.set_num_threads; XLA's CPU pool follows the affinity).
Each time is the median over `--repeats` calls after `--warmup`; the table shows wall time and,
in brackets, the process CPU time of the call (robust when other jobs share the machine), the
ratio torch / jaxpose (> 1: jaxpose faster) and jaxpose's compile time (wall, and CPU in brackets).

  export JAXPOSE_OFFICIAL_MOTIONAGFORMER=/path/to/MotionAGFormer   # git checkouts of the repos
  export JAXPOSE_OFFICIAL_MIXSTE=/path/to/MixSTE
  export JAXPOSE_OFFICIAL_MOTIONBERT=/path/to/MotionBERT
  pip install torch==2.13.0 einops     # torch extra; einops is imported by the MixSTE file
  python experiments/torch_vs_jax/run.py --models mag_xs,mag_b,mixste,motionbert --cores 1 \
      --threads 1 --out experiments/torch_vs_jax/results/<machine>.json

Official-repo imports that are not needed for these models (timm helpers, MixSTE's alternative
attention modules) are satisfied by the small stand-ins in `stubs/` (our own code: DropPath, the
weight-init helpers, empty placeholders). The script re-executes itself once with jaxpose's glibc
allocator settings (jaxpose/cli/runtime.py); both frameworks then run under the same allocator.
"""

from __future__ import annotations

import json
import os
import pathlib
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from absl import flags

HERE = pathlib.Path(__file__).resolve().parent

# label -> official builder, jaxpose family, batch, input channels, official constructor kwargs
# (MotionAGFormer: the jaxpose variant whose VARIANTS entry holds the official yaml settings)
MODELS: dict[str, dict[str, Any]] = {
  'mag_xs': dict(
    title='MotionAGFormer-XS (T=27)',
    env='JAXPOSE_OFFICIAL_MOTIONAGFORMER',
    family='motionagformer',
    batch=16,
    frames=27,
    channels=3,
    variant='xs',
  ),
  'mag_b': dict(
    title='MotionAGFormer-B (T=243)',
    env='JAXPOSE_OFFICIAL_MOTIONAGFORMER',
    family='motionagformer',
    batch=1,
    frames=243,
    channels=3,
    variant='b',
  ),
  'mixste': dict(
    title='MixSTE (T=243)',
    env='JAXPOSE_OFFICIAL_MIXSTE',
    family='mixste',
    batch=1,
    frames=243,
    channels=2,
    ctor=dict(
      num_frame=243,
      num_joints=17,
      in_chans=2,
      embed_dim_ratio=512,
      depth=8,
      num_heads=8,
      mlp_ratio=2.0,
      qkv_bias=True,
      qk_scale=None,
      drop_path_rate=0.1,
    ),
  ),
  'motionbert': dict(
    title='MotionBERT (T=243)',
    env='JAXPOSE_OFFICIAL_MOTIONBERT',
    family='motionbert',
    batch=1,
    frames=243,
    channels=3,
    ctor=dict(
      dim_in=3,
      dim_out=3,
      dim_feat=512,
      dim_rep=512,
      depth=5,
      num_heads=8,
      mlp_ratio=2,
      maxlen=243,
      num_joints=17,
      att_fuse=True,
    ),
  ),
}


def make_flags() -> flags.FlagValues:
  fv = flags.FlagValues()
  flags.DEFINE_list('models', ['mag_xs'], f'rows to run: {", ".join(MODELS)}', flag_values=fv)
  flags.DEFINE_list('modes', ['infer', 'train'], 'infer and/or train', flag_values=fv)
  flags.DEFINE_list('cores', ['0'], 'CPU cores both frameworks are pinned to', flag_values=fv)
  flags.DEFINE_integer('threads', 1, 'intra-op threads of both frameworks', flag_values=fv)
  flags.DEFINE_integer('warmup', 2, 'untimed calls before timing', flag_values=fv)
  flags.DEFINE_integer('repeats', 5, 'timed calls per framework and mode', flag_values=fv)
  flags.DEFINE_integer('batch', None, "override every row's batch size", flag_values=fv)
  flags.DEFINE_string('out', '', 'write the rows as JSON here', flag_values=fv)
  flags.DEFINE_enum(
    'precision',
    'float32',
    ['float32', 'bfloat16'],
    'bfloat16: matmuls in bf16 on both sides (torch autocast; jaxpose train.matmul_precision)',
    flag_values=fv,
  )
  return fv


def _import_official(label: str):
  """The official torch module class of `label`, imported from its checkout."""
  spec = MODELS[label]
  root = os.environ.get(spec['env'])
  if not root or not pathlib.Path(root).is_dir():
    raise SystemExit(f'{label}: set {spec["env"]} to a checkout of the official repository')
  for p in (str(HERE / 'stubs'), root):
    if p not in sys.path:
      sys.path.insert(0, p)
  if spec['family'] == 'motionagformer':
    from model.MotionAGFormer import MotionAGFormer  # noqa: PLC0415

    return MotionAGFormer
  if spec['family'] == 'mixste':
    from common.model_cross import MixSTE2  # noqa: PLC0415

    return MixSTE2
  from lib.model.DSTformer import DSTformer  # noqa: PLC0415

  return DSTformer


def _official_kwargs(label: str) -> dict[str, Any]:
  spec = MODELS[label]
  if spec['family'] == 'motionagformer':
    from jaxpose.models import motionagformer  # noqa: PLC0415

    return dict(motionagformer.VARIANTS[spec['variant']])  # act_layer 'gelu', set per side below
  return dict(spec['ctor'])


def build_pair(label: str, batch: int):
  """(torch module, jaxpose module, jaxpose variables, input array) with the same weights."""
  import numpy as np
  import torch
  from torch import nn

  from jaxpose import convert

  spec = MODELS[label]
  cls = _import_official(label)
  kw = _official_kwargs(label)
  torch_kw = dict(kw)
  if spec['family'] == 'motionagformer':
    torch_kw['act_layer'] = nn.GELU
  if spec['family'] == 'motionbert':
    from functools import partial  # noqa: PLC0415

    torch_kw['norm_layer'] = partial(nn.LayerNorm, eps=1e-6)
  torch.manual_seed(0)
  tmodel = cls(**torch_kw)
  sd = {k: v.detach().numpy() for k, v in tmodel.state_dict().items()}
  jmodel, variables = convert.load_official(spec['family'], sd, **kw)
  rng = np.random.default_rng(1)
  x = rng.uniform(-1, 1, (batch, spec['frames'], 17, spec['channels'])).astype(np.float32)
  if spec['channels'] == 3:
    x[..., 2] = rng.uniform(0, 1, x.shape[:-1])
  return tmodel, jmodel, variables, x


def median_call(fn: Callable[[], Any], warmup: int, repeats: int) -> tuple[float, float]:
  for _ in range(warmup):
    fn()
  wall, cpu = [], []
  for _ in range(repeats):
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    wall.append(time.perf_counter() - t0)
    cpu.append(time.process_time() - c0)
  return statistics.median(wall), statistics.median(cpu)


def torch_calls(tmodel, x_np, precision: str = 'float32') -> dict[str, Callable[[], Any]]:
  """precision 'bfloat16': both calls under `torch.autocast('cpu', dtype=torch.bfloat16)`."""
  import contextlib

  import torch

  def amp():
    if precision == 'float32':
      return contextlib.nullcontext()
    return torch.autocast('cpu', dtype=torch.bfloat16)

  x = torch.from_numpy(x_np)
  target = torch.from_numpy(
    __import__('numpy').random.default_rng(2).normal(0, 0.1, (*x.shape[:-1], 3)).astype('float32')
  )
  opt = torch.optim.AdamW(tmodel.parameters(), lr=1e-4, weight_decay=0.01)

  def infer():
    tmodel.eval()
    with torch.no_grad(), amp():
      return tmodel(x)

  def train():
    tmodel.train()
    opt.zero_grad(set_to_none=True)
    with amp():
      out = tmodel(x)
    loss = torch.linalg.vector_norm(out.float() - target, dim=-1).mean()
    loss.backward()
    opt.step()
    return loss.item()

  return {'infer': infer, 'train': train}


def _xla_gflop(compiled) -> float:
  """XLA's FLOP count of a compiled function (cost analysis), in GFLOP."""
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, list) else cost
  return float(cost.get('flops', float('nan'))) / 1e9


def jax_calls(
  jmodel, variables, x_np, row: dict[str, Any], precision: str = 'float32'
) -> dict[str, Callable[[], Any]]:
  """precision 'bfloat16': traced under `jax.default_matmul_precision('bfloat16')`, the policy of
  `jaxpose.models.layers.matmul` (bf16 matmul operands, float32 everything else)."""
  import jax
  import jax.numpy as jnp
  import numpy as np
  import optax

  x = jnp.asarray(x_np)
  target = jnp.asarray(np.random.default_rng(2).normal(0, 0.1, (*x.shape[:-1], 3)), jnp.float32)
  params = variables['params']
  extra = {k: v for k, v in variables.items() if k != 'params'}
  tx = optax.adamw(1e-4, weight_decay=0.01)

  mm = jax.default_matmul_precision(None if precision == 'float32' else precision)
  t0, c0 = time.perf_counter(), time.process_time()
  with mm:
    infer_c = jax.jit(lambda v, x: jmodel.apply(v, x, train=False)).lower(variables, x).compile()
  row['jax_infer_compile_s'] = time.perf_counter() - t0
  row['jax_infer_compile_cpu_s'] = time.process_time() - c0
  row['jax_infer_gflop'] = _xla_gflop(infer_c)

  def step(params, extra, opt, x, key):
    def loss_fn(p):
      rngs = {'dropout': key, 'drop_path': jax.random.fold_in(key, 1)}
      if extra:
        out, new = jmodel.apply(
          {'params': p, **extra}, x, train=True, rngs=rngs, mutable=list(extra)
        )
      else:
        out, new = jmodel.apply({'params': p}, x, train=True, rngs=rngs), extra
      return jnp.mean(jnp.sqrt(jnp.sum(jnp.square(out - target), -1))), new

    (loss, new), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt = tx.update(grads, opt, params)
    return optax.apply_updates(params, updates), new, opt, loss

  state = [params, extra, tx.init(params)]
  key = jax.random.key(0)
  t0, c0 = time.perf_counter(), time.process_time()
  with jax.default_matmul_precision(None if precision == 'float32' else precision):
    train_c = jax.jit(step, donate_argnums=(0, 1, 2)).lower(*state, x, key).compile()
  row['jax_train_compile_s'] = time.perf_counter() - t0
  row['jax_train_gflop'] = _xla_gflop(train_c)
  row['jax_train_compile_cpu_s'] = time.process_time() - c0

  def train():
    p, e, o, loss = train_c(*state, x, key)
    state[:] = [p, e, o]
    return jax.block_until_ready(loss)

  return {'infer': lambda: jax.block_until_ready(infer_c(variables, x)), 'train': train}


def run_row(label: str, args) -> dict[str, Any]:
  import numpy as np
  import torch

  spec = MODELS[label]
  batch = args.batch or spec['batch']
  tmodel, jmodel, variables, x = build_pair(label, batch)
  row: dict[str, Any] = {'model': spec['title'], 'label': label, 'batch': batch}
  tmodel.eval()
  with torch.no_grad():
    t_out = tmodel(torch.from_numpy(x)).numpy()
  j_out = np.asarray(jmodel.apply(variables, x, train=False))
  row['max_abs_diff'] = float(np.abs(t_out - j_out).max())
  row['output_scale'] = float(np.abs(t_out).max())
  calls = {
    'torch': torch_calls(tmodel, x, args.precision),
    'jax': jax_calls(jmodel, variables, x, row, args.precision),
  }
  for mode in args.modes:
    for side in ('torch', 'jax'):
      for _ in range(args.warmup):
        calls[side][mode]()
    times: dict[str, list[tuple[float, float]]] = {'torch': [], 'jax': []}
    for _ in range(args.repeats):  # alternate: one call each per round
      for side in ('torch', 'jax'):
        times[side].append(median_call(calls[side][mode], 0, 1))
    for side in ('torch', 'jax'):
      row[f'{side}_{mode}_s'] = statistics.median(t[0] for t in times[side])
      row[f'{side}_{mode}_cpu_s'] = statistics.median(t[1] for t in times[side])
    row[f'{mode}_ratio'] = row[f'torch_{mode}_s'] / row[f'jax_{mode}_s']
    row[f'{mode}_ratio_cpu'] = row[f'torch_{mode}_cpu_s'] / row[f'jax_{mode}_cpu_s']
    print(
      f'  {spec["title"]} {mode}: torch {row[f"torch_{mode}_s"]:.3f} s, jaxpose '
      f'{row[f"jax_{mode}_s"]:.3f} s, ratio {row[f"{mode}_ratio"]:.2f} '
      f'(cpu {row[f"{mode}_ratio_cpu"]:.2f})',
      flush=True,
    )
  return row


def markdown(rows: list[dict[str, Any]], modes: list[str]) -> str:
  lines = [
    '| model | mode | batch | torch s (cpu) | jaxpose s (cpu) | ratio (cpu) | jaxpose compile s (cpu) |',
    '|---|---|---|---|---|---|---|',
  ]
  for r in rows:
    for m in modes:
      lines.append(
        f'| {r["model"]} | {m} | {r["batch"]} | {r[f"torch_{m}_s"]:.3f} ({r[f"torch_{m}_cpu_s"]:.3f})'
        f' | {r[f"jax_{m}_s"]:.3f} ({r[f"jax_{m}_cpu_s"]:.3f}) | {r[f"{m}_ratio"]:.2f} '
        f'({r[f"{m}_ratio_cpu"]:.2f}) | {r[f"jax_{m}_compile_s"]:.1f} '
        f'({r.get(f"jax_{m}_compile_cpu_s", float("nan")):.1f}) |'
      )
  return '\n'.join(lines)


def _git_head() -> str:
  import subprocess  # noqa: PLC0415

  try:
    out = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=HERE, capture_output=True)
    return out.stdout.decode().strip()
  except OSError:
    return ''


def _cpu_model() -> str:
  try:
    for line in pathlib.Path('/proc/cpuinfo').read_text().splitlines():
      if line.startswith('model name'):
        return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.machine()


def pin(cores: set[int], threads: int) -> None:
  """Both frameworks on `cores` with `threads` intra-op threads, under jaxpose's allocator.

  Re-executes the script once with jaxpose's glibc malloc settings (`jaxpose.cli.runtime`); call it
  before jax runs anything.
  """
  from jaxpose.cli import runtime

  runtime.maybe_reexec()
  os.sched_setaffinity(0, cores)
  os.environ.setdefault(
    'XLA_FLAGS',
    '--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1' if threads == 1 else '',
  )
  import torch

  torch.set_num_threads(threads)


def main(argv: list[str]) -> int:
  from jaxpose.cli import common

  args = make_flags()
  common.parse(args, argv, __doc__)
  unknown = sorted(set(args.models) - set(MODELS))
  if unknown:
    return common.error(argv[0], f'unknown models {unknown}; valid: {", ".join(MODELS)}')
  pin({int(c) for c in args.cores}, args.threads)
  import jax
  import torch

  rows = []
  for label in args.models:
    rows.append(run_row(label, args))
  table = markdown(rows, args.modes)
  print(table)
  meta = {
    'precision': args.precision,
    'machine': platform.processor() or platform.machine(),
    'cores': args.cores,
    'threads': args.threads,
    'jax': jax.__version__,
    'torch': torch.__version__,
    'date': time.strftime('%Y-%m-%d'),
    'glibc_tunables': os.environ.get('GLIBC_TUNABLES', ''),
    'xla_flags': os.environ.get('XLA_FLAGS', ''),
    'commit': _git_head(),
    'cpu_model': _cpu_model(),
  }
  if args.out:
    pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.out).write_text(json.dumps({'meta': meta, 'rows': rows}, indent=2))
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv))
