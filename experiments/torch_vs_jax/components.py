"""Where does a T=243 training step spend its time, layer by layer, in torch and in jaxpose?

`run.py` times whole steps. This script takes the step apart: it times the forward plus backward
pass of each kind of layer in MixSTE's and MotionBERT's blocks (T=243 frames, J=17 joints,
width 512, 8 heads, MLP hidden 1024, batch 1) on its own, in both frameworks, one thread, and
multiplies by how often the layer occurs in each model's step. jaxpose's side uses the layers the
models use (`layers.Linear` with its custom VJP, `layers.attention.Attention`'s split/attend/merge,
`layers.LayerNorm`, `layers.Mlp` with the exact-erf GELU); torch's side is the same computation
written as the official code writes it (nn.Linear, timm attention with its permutes, nn.LayerNorm,
nn.GELU; MixSTE's temporal blocks also pay einops' `b f n c -> (b n) f c` copies, which jaxpose
avoids by attending along an axis). The AdamW update is timed over a parameter list with the
model's leaf shapes.

Every time is the median process CPU time of `--repeats` calls after a warm-up; both sides run in
this process pinned to one core (`--core`), torch with one thread, XLA with one intra-op thread.

  python experiments/torch_vs_jax/components.py --out experiments/torch_vs_jax/results/components.json
"""

from __future__ import annotations

import json
import pathlib
import sys
from collections.abc import Callable
from typing import Any

import run  # experiments/torch_vs_jax/run.py: pinning and the timing loop
from absl import flags

T, J, D, H, HIDDEN = 243, 17, 512, 8, 1024

# layer -> occurrences per training step (forward + backward) in each model.
# MixSTE (depth 8): 8 spatial + 8 temporal timm blocks. MotionBERT (depth 5, att_fuse): per depth
# two streams (spatial->temporal and temporal->spatial), each a spatial and a temporal block, so 10
# spatial + 10 temporal blocks, plus the fusion linear (2D -> 2) per depth.
COUNTS: dict[str, dict[str, int]] = {
  'mixste': {
    'layernorm': 32,
    'linear_qkv': 16,
    'attend_spatial': 8,
    'attend_temporal': 8,
    'linear_proj': 16,
    'mlp': 16,
    'adamw': 1,
  },
  'motionbert': {
    'layernorm': 40,
    'linear_qkv': 20,
    'attend_spatial': 10,
    'attend_temporal': 10,
    'linear_proj': 20,
    'mlp': 20,
    'adamw': 1,
  },
}


def make_flags() -> flags.FlagValues:
  fv = flags.FlagValues()
  flags.DEFINE_integer('core', 1, 'the CPU core both frameworks are pinned to', flag_values=fv)
  flags.DEFINE_integer('warmup', 2, 'untimed calls per layer and side', flag_values=fv)
  flags.DEFINE_integer('repeats', 5, 'timed calls per layer and side', flag_values=fv)
  flags.DEFINE_string('out', '', 'write the rows as JSON here', flag_values=fv)
  return fv


def _param_shapes(model: str) -> list[tuple[int, ...]]:
  """The leaf shapes of the model's parameters (from jaxpose's own init, abstractly)."""
  import jax

  from jaxpose import models

  m = models.build(model, '243' if model == 'mixste' else 'base')
  x = jax.ShapeDtypeStruct(models.example_inputs(m, 1)[0].shape, 'float32')
  shapes = jax.eval_shape(lambda x: m.init(jax.random.key(0), x, train=False), x)
  return [leaf.shape for leaf in jax.tree.leaves(shapes['params'])]


def torch_layers(param_shapes: dict[str, list[tuple[int, ...]]]) -> dict[str, Callable[[], Any]]:
  """Each layer's forward + backward in torch eager, written as the official code writes it."""
  import torch
  from torch import nn

  g = torch.Generator().manual_seed(0)
  x = torch.randn(1, T, J, D, generator=g, requires_grad=True)
  qkv_in = torch.randn(1, T, J, 3 * D, generator=g, requires_grad=True)
  lin_qkv, lin_proj = nn.Linear(D, 3 * D), nn.Linear(D, D)
  norm = nn.LayerNorm(D, eps=1e-6)
  fc1, fc2, act = nn.Linear(D, HIDDEN), nn.Linear(HIDDEN, D), nn.GELU()

  def attend(qkv):  # timm Attention.forward between the two projections, on (B', N, 3D)
    b, n, _ = qkv.shape
    qkv = qkv.reshape(b, n, 3, H, D // H).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    attn = ((q @ k.transpose(-2, -1)) * (D // H) ** -0.5).softmax(dim=-1)
    return (attn @ v).transpose(1, 2).reshape(b, n, D)

  def spatial():
    return attend(qkv_in.reshape(T, J, 3 * D)).reshape(1, T, J, D)

  def temporal():  # einops 'b f n c -> (b n) f c' and back, as MixSTE's temporal blocks
    y = attend(qkv_in.permute(0, 2, 1, 3).reshape(J, T, 3 * D))
    return y.reshape(1, J, T, D).permute(0, 2, 1, 3).contiguous()

  def fwd_bwd(f, inp):
    with torch.no_grad():
      ct = torch.randn(f(inp).shape, generator=g)

    def call():
      f(inp).backward(ct)
      for p in [inp, *params]:
        p.grad = None

    return call

  params = [
    *lin_qkv.parameters(),
    *lin_proj.parameters(),
    *norm.parameters(),
    *fc1.parameters(),
    *fc2.parameters(),
  ]
  layers = {
    'layernorm': fwd_bwd(norm, x),
    'linear_qkv': fwd_bwd(lin_qkv, x),
    'attend_spatial': fwd_bwd(lambda _: spatial(), qkv_in),
    'attend_temporal': fwd_bwd(lambda _: temporal(), qkv_in),
    'linear_proj': fwd_bwd(lin_proj, x),
    'mlp': fwd_bwd(lambda t: fc2(act(fc1(t))), x),
  }
  for dtype in (torch.float32, torch.bfloat16):  # the core's GEMM peak: a 2048^3 matmul
    a = torch.randn(2048, 2048, generator=g).to(dtype)
    layers[f'gemm2048_{str(dtype).split(".")[1]}'] = torch.no_grad()(lambda a=a: a @ a)
  for model, shapes in param_shapes.items():
    ps = [torch.randn(*s, generator=g).requires_grad_() for s in shapes]
    for p in ps:
      p.grad = torch.randn_like(p)
    opt = torch.optim.AdamW(ps, lr=1e-4, weight_decay=0.01)
    layers[f'adamw_{model}'] = opt.step
  return layers


def jax_layers(param_shapes: dict[str, list[tuple[int, ...]]]) -> dict[str, Callable[[], Any]]:
  """The same layers through jaxpose's modules, each fwd + bwd jitted on its own."""
  import jax
  import jax.numpy as jnp
  import numpy as np
  import optax
  from flax import linen as nn

  from jaxpose.models.layers import attention
  from jaxpose.models.layers.linear import Linear
  from jaxpose.models.layers.mlp import Mlp
  from jaxpose.models.layers.norms import LayerNorm

  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(1, T, J, D)), jnp.float32)
  qkv_in = jnp.asarray(rng.normal(size=(1, T, J, 3 * D)), jnp.float32)

  def attend_along(axis):
    def f(qkv):
      q, k, v = attention._split_heads(qkv, axis, H)
      return attention._merge_heads(attention.attend(q, k, v, (D // H) ** -0.5), axis)

    return f

  # A random cotangent passed as an argument, so XLA cannot fold it; value_and_grad, so the
  # forward pass is computed as torch computes it (grad alone lets XLA drop the last matmul).
  def cotangent(f, *args):
    shape = jax.eval_shape(f, *args).shape
    return jnp.asarray(rng.normal(size=shape), jnp.float32)

  def module_fwd_bwd(module, inp):
    params = module.init(jax.random.key(0), inp)
    ct = cotangent(module.apply, params, inp)

    def loss(p, t, ct):
      return jnp.sum(module.apply(p, t) * ct)

    step = jax.jit(jax.value_and_grad(loss, argnums=(0, 1))).lower(params, inp, ct).compile()
    return lambda: jax.block_until_ready(step(params, inp, ct))

  def fn_fwd_bwd(f, inp):
    ct = cotangent(f, inp)
    step = jax.jit(jax.value_and_grad(lambda t, ct: jnp.sum(f(t) * ct))).lower(inp, ct).compile()
    return lambda: jax.block_until_ready(step(inp, ct))

  class _Mlp(nn.Module):  # Mlp in train mode (no dropout in these configs)
    @nn.compact
    def __call__(self, t):
      return Mlp(HIDDEN, name='mlp')(t, train=True)

  layers = {
    'layernorm': module_fwd_bwd(LayerNorm(epsilon=1e-6), x),
    'linear_qkv': module_fwd_bwd(Linear(3 * D), x),
    'attend_spatial': fn_fwd_bwd(attend_along(2), qkv_in),
    'attend_temporal': fn_fwd_bwd(attend_along(1), qkv_in),
    'linear_proj': module_fwd_bwd(Linear(D), x),
    'mlp': module_fwd_bwd(_Mlp(), x),
  }
  for name, dtype in (('float32', jnp.float32), ('bfloat16', jnp.bfloat16)):
    a = jnp.asarray(rng.normal(size=(2048, 2048)), dtype)
    mm = jax.jit(lambda a: jax.lax.dot(a, a, preferred_element_type=jnp.float32)).lower(a).compile()
    layers[f'gemm2048_{name}'] = lambda mm=mm, a=a: jax.block_until_ready(mm(a))
  for model, shapes in param_shapes.items():
    tx = optax.adamw(1e-4, weight_decay=0.01)
    ps = [jnp.asarray(rng.normal(size=s), jnp.float32) for s in shapes]
    grads = [jnp.asarray(rng.normal(size=s), jnp.float32) for s in shapes]
    state = tx.init(ps)

    def update(p, s, gr, tx=tx):
      u, s = tx.update(gr, s, p)
      return optax.apply_updates(p, u), s

    step = jax.jit(update, donate_argnums=(0, 1)).lower(ps, state, grads).compile()
    box = [ps, state]

    def call(step=step, box=box, grads=grads):
      box[:] = step(box[0], box[1], grads)
      jax.block_until_ready(box[0])

    layers[f'adamw_{model}'] = call
  return layers


def table(rows: dict[str, dict[str, float]]) -> str:
  """Per-layer times and, per model, the per-step totals they add up to."""
  out = ['| layer | torch ms | jaxpose ms | ratio |', '|---|---|---|---|']
  for name, r in rows.items():
    if name.startswith('gemm2048'):
      gf = 2 * 2048**3 / 1e9
      out.append(f'| {name} (GFLOP/s) | {gf / r["torch"]:.0f} | {gf / r["jax"]:.0f} | |')
      continue
    out.append(
      f'| {name} | {1e3 * r["torch"]:.1f} | {1e3 * r["jax"]:.1f} | {r["torch"] / r["jax"]:.2f} |'
    )
  for model, counts in COUNTS.items():
    out += [
      '',
      f'{model}: per training step',
      '',
      '| layer | count | torch s | jaxpose s | jaxpose - torch s |',
      '|---|---|---|---|---|',
    ]
    tt = jt = 0.0
    for name, n in counts.items():
      r = rows[f'adamw_{model}' if name == 'adamw' else name]
      tt, jt = tt + n * r['torch'], jt + n * r['jax']
      out.append(
        f'| {name} | {n} | {n * r["torch"]:.3f} | {n * r["jax"]:.3f} | '
        f'{n * (r["jax"] - r["torch"]):+.3f} |'
      )
    out.append(f'| sum | | {tt:.3f} | {jt:.3f} | {jt - tt:+.3f} |')
  return '\n'.join(out)


def main(argv: list[str]) -> int:
  from jaxpose.cli import common

  args = make_flags()
  common.parse(args, argv, __doc__)
  run.pin({args.core}, 1)
  shapes = {m: _param_shapes(m) for m in COUNTS}
  sides = {'torch': torch_layers(shapes), 'jax': jax_layers(shapes)}
  rows: dict[str, dict[str, float]] = {}
  for name in sides['torch']:
    rows[name] = {s: run.median_call(sides[s][name], args.warmup, args.repeats)[1] for s in sides}
    print(
      f'  {name}: torch {rows[name]["torch"]:.4f} s, jaxpose {rows[name]["jax"]:.4f} s', flush=True
    )
  print(table(rows))
  if args.out:
    pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.out).write_text(json.dumps({'core': args.core, 'rows': rows}, indent=2))
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv))
