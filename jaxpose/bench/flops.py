"""Multiply-accumulate counts (what pose papers call "FLOPs") from a walk over the jaxpr.

Two conventions are reported, because papers mix them (research/ecosystem.md §3):

* **Linear/Conv** (thop / torchprofile style, what most papers print): MACs of `dot_general`s that
  multiply an activation by a *parameter* (nn.Linear, Dense, DenseGeneral, Einsum with a kernel) plus
  every convolution. Attention products written functionally (`q @ k.T`) are invisible to thop.
* **All** (fvcore / torch `FlopCounterMode` style): every `dot_general` and convolution, so QKᵀ, AV,
  similarity matrices and `adjacency @ x` are included.

Which `dot_general`s are "Linear" is decided by data flow, not by module type: every jaxpr variable
is labelled CONST (depends on nothing but literals and closed-over constants), PARAM (depends on the
parameter inputs and constants only) or ACT (depends on the data input). Labels propagate through
every equation as the maximum of the input labels, so a kernel stays PARAM through transposes,
reshapes, dtype converts, broadcasts, slicing or a multiplication by a constant mask. A dot of ACT by
PARAM is Linear; ACT by ACT (QKᵀ, AV, z zᵀ) or ACT by CONST (a fixed graph adjacency, a DCT basis) is
a "matmul"; a dot without an ACT operand (parameter-only preprocessing) is also a "matmul", since it
still runs once per call.

The walk follows nested jaxprs: `jit`/`pjit`, `remat`, `custom_jvp_call`, `custom_vjp_call`,
`closed_call`; `scan` bodies are multiplied by the scan length (XLA's `cost_analysis()` counts them
once); `cond` takes the most expensive branch; a `while` loop whose body contains MACs has no static
trip count and raises (use `lax.scan` or `fori_loop` with static bounds, which lowers to scan). Only
`dot_general` and `conv_general_dilated` are counted: elementwise ops, reductions, softmax, norms
and decompositions (SVD in Procrustes) are not, as in the papers.

MACs of a `dot_general` = prod(output shape) × prod(contracted sizes); of a convolution =
prod(output shape) × (input features per group) × prod(kernel spatial sizes). XLA's `flops` is
2 per MAC for these plus 1 per element for elementwise ops.

Typical use::

  report = model_flops(build('motionagformer', 'xs'))
  report['macs_linear'], report['macs_all'], report['macs_all_per_frame'], report['flops_xla']
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core as jcore

CONST, PARAM, ACT = 0, 1, 2

# Higher-order primitives whose single sub-jaxpr takes exactly the equation's operands.
_CALL_PARAMS = {
  'jit': 'jaxpr',
  'pjit': 'jaxpr',
  'closed_call': 'call_jaxpr',
  'core_call': 'call_jaxpr',
  'remat': 'jaxpr',
  'remat2': 'jaxpr',
  'checkpoint': 'jaxpr',
  'custom_jvp_call': 'call_jaxpr',
  'custom_vjp_call': 'call_jaxpr',
  'custom_vjp_call_jaxpr': 'fun_jaxpr',
  'custom_lin': None,  # appears only under linearize; carries no sub-jaxpr
}


@dataclasses.dataclass(frozen=True)
class MacCount:
  """MACs split by kind. `thop` is Linear + Conv; `total` adds activation matmuls.

  Attributes:
    linear: dot_generals of an activation with a parameter (Linear / Dense layers).
    conv: every conv_general_dilated.
    matmul: every other dot_general (attention QKᵀ and AV, similarity, fixed-graph aggregation).
  """

  linear: int = 0
  conv: int = 0
  matmul: int = 0

  @property
  def thop(self) -> int:
    """Linear + Conv MACs: the thop / torchprofile convention most papers report."""
    return self.linear + self.conv

  @property
  def total(self) -> int:
    """All dot_general and conv MACs: the fvcore / FlopCounterMode convention."""
    return self.linear + self.conv + self.matmul

  def __add__(self, other: MacCount) -> MacCount:
    return MacCount(self.linear + other.linear, self.conv + other.conv, self.matmul + other.matmul)

  def scale(self, k: int) -> MacCount:
    return MacCount(self.linear * k, self.conv * k, self.matmul * k)


def _as_jaxpr(obj: Any) -> jcore.Jaxpr | None:
  """The Jaxpr inside a Jaxpr or ClosedJaxpr (its constvars are labelled CONST), else None."""
  if isinstance(obj, jcore.ClosedJaxpr):
    return obj.jaxpr
  if isinstance(obj, jcore.Jaxpr):
    return obj
  return None


def _dot_macs(eqn) -> int:
  (lhs_contract, _), _ = eqn.params['dimension_numbers']
  lhs_shape = eqn.invars[0].aval.shape
  out = math.prod(eqn.outvars[0].aval.shape)
  return int(out * math.prod(lhs_shape[d] for d in lhs_contract))


def _conv_macs(eqn) -> int:
  rhs_spec = eqn.params['dimension_numbers'].rhs_spec  # (out feature, in feature, *spatial)
  rhs_shape = eqn.invars[1].aval.shape
  per_out = rhs_shape[rhs_spec[1]] * math.prod(rhs_shape[d] for d in rhs_spec[2:])
  return int(math.prod(eqn.outvars[0].aval.shape) * per_out)


def _conv_transpose_macs(eqn) -> int:
  """`models.layers.conv.conv_transpose_subpixel` (x, kernel (kH, kW, C_in, C_out)) counted as
  thop counts torch's ConvTranspose2d: output elements x C_in x kH x kW. The sub-pixel kernel it
  runs has structural zeros (36 taps per input pixel for k 4 s 2 against the layer's 16)."""
  kh, kw, c_in, _ = eqn.invars[1].aval.shape
  return int(math.prod(eqn.outvars[0].aval.shape) * c_in * kh * kw)


class _Walker:
  """Walks a jaxpr, labelling variables CONST/PARAM/ACT and summing MACs."""

  def walk(self, jaxpr: jcore.Jaxpr, in_labels: Sequence[int]) -> tuple[MacCount, list[int]]:
    """MACs of one evaluation of `jaxpr` and the labels of its outputs."""
    if len(in_labels) != len(jaxpr.invars):
      raise ValueError(f'{len(in_labels)} labels for {len(jaxpr.invars)} jaxpr inputs')
    env: dict[Any, int] = {v: CONST for v in jaxpr.constvars}
    env.update(zip(jaxpr.invars, in_labels))
    read = lambda v: env.get(v, CONST) if isinstance(v, jcore.Var) else CONST  # literals: CONST
    total = MacCount()
    for eqn in jaxpr.eqns:
      labels = [read(v) for v in eqn.invars]
      macs, out_labels = self._eqn(eqn, labels)
      total = total + macs
      for v, lab in zip(eqn.outvars, out_labels):
        env[v] = lab
    return total, [read(v) for v in jaxpr.outvars]

  def _eqn(self, eqn, labels: list[int]) -> tuple[MacCount, list[int]]:
    name = eqn.primitive.name
    joined = max(labels, default=CONST)
    default_out = [joined] * len(eqn.outvars)
    if name == 'dot_general':
      macs = _dot_macs(eqn)
      lhs, rhs = labels[:2]
      is_linear = ACT in (lhs, rhs) and PARAM in (lhs, rhs)
      return (MacCount(linear=macs) if is_linear else MacCount(matmul=macs)), default_out
    if name == 'conv_general_dilated':
      return MacCount(conv=_conv_macs(eqn)), default_out
    if name in ('jit', 'pjit') and eqn.params.get('name') == 'conv_transpose_subpixel':
      return MacCount(conv=_conv_transpose_macs(eqn)), default_out
    if name == 'scan':
      return self._scan(eqn, labels)
    if name == 'cond':
      return self._cond(eqn, labels)
    if name == 'while':
      return self._while(eqn, labels)
    if name in _CALL_PARAMS:
      key = _CALL_PARAMS[name]
      sub = _as_jaxpr(eqn.params.get(key)) if key else None
      if sub is not None and len(sub.invars) == len(labels):
        macs, outs = self.walk(sub, labels)
        if len(outs) == len(eqn.outvars):
          return macs, outs
        return macs, default_out
    return self._generic(eqn, joined, default_out)

  def _generic(self, eqn, joined: int, default_out: list[int]) -> tuple[MacCount, list[int]]:
    """Any other primitive: walk whatever sub-jaxprs it carries with the joined input label."""
    total = MacCount()
    for value in eqn.params.values():
      for item in value if isinstance(value, tuple | list) else (value,):
        sub = _as_jaxpr(item)
        if sub is not None:
          total = total + self.walk(sub, [joined] * len(sub.invars))[0]
    return total, default_out

  def _fixpoint(self, body: jcore.Jaxpr, labels: list[int], carry: slice):
    """Walks a loop body until the carry labels stop changing (labels only ever go up)."""
    labels = list(labels)
    for _ in range(4):
      macs, outs = self.walk(body, labels)
      n = carry.stop - carry.start
      new = [max(a, b) for a, b in zip(labels[carry], outs[:n])]
      if new == labels[carry]:
        return macs, outs
      labels[carry] = new
    return macs, outs

  def _scan(self, eqn, labels):
    body = eqn.params['jaxpr'].jaxpr
    nc, ncarry = eqn.params['num_consts'], eqn.params['num_carry']
    macs, outs = self._fixpoint(body, labels, slice(nc, nc + ncarry))
    carry_out = [max(a, b) for a, b in zip(labels[nc : nc + ncarry], outs[:ncarry])]
    return macs.scale(int(eqn.params['length'])), carry_out + outs[ncarry:]

  def _cond(self, eqn, labels):
    ops = labels[1:]
    results = [self.walk(b.jaxpr, ops) for b in eqn.params['branches']]
    macs = max((r[0] for r in results), key=lambda m: m.total)
    outs = [max(col) for col in zip(*(r[1] for r in results))]
    return macs, outs

  def _while(self, eqn, labels):
    cn, bn = eqn.params['cond_nconsts'], eqn.params['body_nconsts']
    body = eqn.params['body_jaxpr'].jaxpr
    carry = labels[cn + bn :]
    body_labels = labels[cn : cn + bn] + carry
    macs, outs = self._fixpoint(body, body_labels, slice(bn, bn + len(carry)))
    cond_macs, _ = self.walk(eqn.params['cond_jaxpr'].jaxpr, labels[:cn] + carry)
    if (macs + cond_macs).total:
      raise ValueError(
        'while_loop with matmuls/convs has no static trip count, so its MACs are unknown; '
        'use lax.scan (or fori_loop with Python-int bounds, which lowers to scan)'
      )
    return MacCount(), [max(a, b) for a, b in zip(carry, outs)]


def count_jaxpr_macs(closed: jcore.ClosedJaxpr, in_labels: Sequence[int]) -> MacCount:
  """MACs of a ClosedJaxpr whose inputs carry the given CONST/PARAM/ACT labels."""
  return _Walker().walk(closed.jaxpr, list(in_labels))[0]


def count_macs(fn: Callable[..., Any], params: Any, *inputs: Any, **kwargs: Any) -> MacCount:
  """MACs of `fn(params, *inputs, **kwargs)`, split into Linear, Conv and activation matmuls.

  Args:
    fn: a traceable function.
    params: a pytree whose leaves are labelled PARAM (weights, and buffers such as batch_stats).
      Arrays or `jax.ShapeDtypeStruct`s; nothing is allocated or computed.
    *inputs: pytrees labelled ACT (the data).
    **kwargs: static keyword arguments passed through to `fn`.

  Returns:
    A MacCount for one call (scan bodies multiplied by their length).
  """
  closed = jax.make_jaxpr(lambda p, *a: fn(p, *a, **kwargs))(params, *inputs)
  n_params = len(jax.tree.leaves(params))
  n_inputs = len(closed.jaxpr.invars) - n_params
  return count_jaxpr_macs(closed, [PARAM] * n_params + [ACT] * n_inputs)


def xla_flops(fn: Callable[..., Any], *args: Any) -> float | None:
  """XLA's `cost_analysis()['flops']` for `jit(fn)(*args)`, or None when the backend gives none.

  XLA counts 2 FLOPs per MAC, 1 per elementwise op, and loop (scan) bodies only once.
  """
  lowered = jax.jit(fn).lower(*args)
  # The lowered (pre-optimisation) analysis avoids a compile; the compiled one is the fallback.
  for get_cost in (lowered.cost_analysis, lambda: lowered.compile().cost_analysis()):
    try:
      cost = get_cost()
    except Exception:  # noqa: BLE001  (best effort: some backends have no cost analysis)
      continue
    if isinstance(cost, list | tuple):
      cost = cost[0] if cost else None
    if cost and 'flops' in cost:
      return float(cost['flops'])
  return None


def abstract_variables(model: Any, x: Any) -> Any:
  """`model.init` variables as ShapeDtypeStructs (no allocation, no compute)."""
  return jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)


def _apply_fn(model: Any) -> Callable[..., Any]:
  return lambda variables, *xs: model.apply(variables, *xs, train=False)


def _frames_out(out: Any) -> int:
  leaf = jax.tree.leaves(out)[0]
  return int(leaf.shape[1]) if leaf.ndim >= 2 else 1


def param_count(variables: Any) -> int:
  """Number of entries in the `params` collection."""
  return int(sum(np.prod(s.shape) for s in jax.tree.leaves(variables.get('params', {}))))


def model_flops(
  model: Any,
  x: Any | None = None,
  variables: Any | None = None,
  *,
  xla: bool = True,
  stream_extra_frames: int | None = None,
) -> dict[str, Any]:
  """Params, MACs (both conventions) per clip and per output frame, and XLA FLOPs at batch 1.

  Runs `model.apply(variables, x, train=False)` abstractly (nothing is allocated, so large models
  are cheap to count on CPU).

  Args:
    model: a registry model (lifter or image model; several inputs through the module's
      `example_inputs`).
    x: the input, (1, T, J, C_in); default `jaxpose.models.example_inputs(model)`.
    variables: its variables (arrays or ShapeDtypeStructs); default from `model.init`'s shapes.
    xla: also lower and report XLA's cost-analysis FLOPs (costs one lowering).
    stream_extra_frames: for models that output fewer frames than they read (T_out < T_in, e.g.
      VideoPose3D's dilated TCN), the per-frame cost "over a long sequence" is the marginal cost
      (MACs(T_in + Δ) − MACs(T_in)) / (T_out(T_in + Δ) − T_out(T_in)) with Δ this many frames
      (default T_in). Reported as `macs_*_per_frame_stream`; skipped if the model rejects the
      longer input.

  Returns:
    A dict with `params`, `input` (the example input's shape without the batch axis, e.g.
    '27x17x3' or '256x256x3 image'), `frames_in`, `frames_out` (1 for image models), `macs_linear` (Linear + Conv, thop style),
    `macs_all` (all matmuls), `macs_dense`, `macs_conv`, `macs_matmul`, the `*_per_frame`
    versions (divided by frames_out) and `flops_xla` (None when unavailable), all per clip.
  """
  from jaxpose.models import example_inputs, input_kind

  xs = tuple(example_inputs(model, batch=1)) if x is None else (x,)
  xs = tuple(jax.ShapeDtypeStruct(a.shape, a.dtype) for a in xs)
  x = xs[0]
  kind = input_kind(model)
  image = kind == 'image'
  if variables is None:
    variables = jax.eval_shape(lambda *a: model.init(jax.random.key(0), *a, train=False), *xs)
  apply = _apply_fn(model)
  macs = count_macs(apply, variables, *xs)
  # lifters: T_out of the output; image models: one image; video models (PMCE): one output frame
  frames_out = _frames_out(jax.eval_shape(apply, variables, *xs)) if kind == 'pose2d' else 1
  rep: dict[str, Any] = {
    'params': param_count(variables),
    'input': 'x'.join(str(d) for d in x.shape[1:]) + (' image' if image else ''),
    'frames_in': 1 if image else int(x.shape[1]),
    'frames_out': frames_out,
    'macs_linear': macs.thop,
    'macs_all': macs.total,
    'macs_dense': macs.linear,
    'macs_conv': macs.conv,
    'macs_matmul': macs.matmul,
    'macs_linear_per_frame': macs.thop / frames_out,
    'macs_all_per_frame': macs.total / frames_out,
  }
  if kind == 'pose2d' and frames_out < x.shape[1]:
    rep.update(_stream_per_frame(apply, variables, x, macs, frames_out, stream_extra_frames))
  rep['flops_xla'] = xla_flops(apply, variables, *xs) if xla else None
  return rep


def _stream_per_frame(apply, variables, x, macs: MacCount, frames_out: int, extra: int | None):
  extra = int(extra or x.shape[1])
  longer = jax.ShapeDtypeStruct((x.shape[0], x.shape[1] + extra, *x.shape[2:]), x.dtype)
  try:
    macs2 = count_macs(apply, variables, longer)
    frames2 = _frames_out(jax.eval_shape(apply, variables, longer))
  except Exception:  # the model is tied to its window length  # noqa: BLE001
    return {}
  if frames2 <= frames_out:
    return {}
  d = frames2 - frames_out
  return {
    'macs_linear_per_frame_stream': (macs2.thop - macs.thop) / d,
    'macs_all_per_frame_stream': (macs2.total - macs.total) / d,
  }


def cast_floating(tree: Any, dtype: Any) -> Any:
  """Casts every floating-point leaf of `tree` to `dtype` (integers and keys untouched)."""

  def cast(a):
    if hasattr(a, 'dtype') and jnp.issubdtype(a.dtype, jnp.floating):
      if isinstance(a, jax.ShapeDtypeStruct):
        return jax.ShapeDtypeStruct(a.shape, dtype)
      return a.astype(dtype)
    return a

  return jax.tree.map(cast, tree)
