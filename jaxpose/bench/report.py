"""The `jaxpose bench` report: parameters, MACs (two conventions), XLA FLOPs, throughput, MFU, the zoo.

`run(options)` computes one record per model/variant (counts, the paper's numbers, relative
differences, and a `throughput` list per batch and dtype); `write_outputs` writes DIR/bench.json
(meta + records) and DIR/bench.csv (one line per model/variant/batch/dtype); `table` formats them;
`update_zoo` refreshes jaxpose/bench/zoo.json and the README table. MACs are per clip at batch 1
in inference mode; "lin" is Linear/Conv only (thop, what papers print), "all" adds activation
matmuls (fvcore). Throughput protocol and MFU: see jaxpose/bench/throughput.py. The command line
is jaxpose/cli/bench.py.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import json
import pathlib
import subprocess
import sys
from typing import Any

DTYPES = ('float32', 'bfloat16')


def parse_models(spec: str) -> list[tuple[str, str | None]]:
  """'all' or 'name[:variant],...' -> [(name, variant)], validated against the registry.

  Raises:
    ValueError: unknown model (listing the valid names) or variant (listing the model's variants).
  """
  from jaxpose import models
  from jaxpose.bench.zoo import all_specs

  if spec.strip() in ('', 'all'):
    return all_specs()
  out: list[tuple[str, str | None]] = []
  for item in (s.strip() for s in spec.split(',')):
    if not item:
      continue
    name, _, variant = item.partition(':')
    table = models.variants(name)  # raises with the valid model names
    if not variant:
      out += [(name, v) for v in table] or [(name, None)]
    elif variant not in table:
      valid = ', '.join(table) or '(none)'
      raise ValueError(f'Unknown variant {variant!r} for model {name!r}; valid variants: {valid}')
    else:
      out.append((name, variant))
  return list(dict.fromkeys(out))


def _ints(s: str) -> list[int]:
  try:
    vals = [int(v) for v in s.split(',') if v.strip()]
  except ValueError as e:
    raise ValueError(f'--batch expects comma-separated integers, got {s!r}') from e
  if not vals or min(vals) < 1:
    raise ValueError(f'--batch expects positive integers, got {s!r}')
  return vals


def _dtypes(s: str) -> list[str]:
  vals = [v.strip() for v in s.split(',') if v.strip()]
  bad = [v for v in vals if v not in DTYPES]
  if bad or not vals:
    raise ValueError(f'--dtype: unknown {bad or s!r}; valid: {", ".join(DTYPES)}')
  return vals


@dataclasses.dataclass(frozen=True)
class Options:
  """What to bench (the flags of `jaxpose bench`).

  Attributes:
    models: 'all' or 'name[:variant],...' (`parse_models`).
    batch: batch sizes for throughput, '1,16'.
    dtype: compute dtypes for throughput, 'float32,bfloat16'.
    throughput: measure inference (and training) throughput; False: counts only.
    train: also time the training step.
    xla: also run XLA's cost analysis (one lowering per model).
    warmup, repeats, iters: untimed calls after compiling; timed windows (the median is
      reported); calls per window.
    peak_size: side of the peak-FLOP/s matmul (0: automatic).
    zoo_markdown: refresh zoo.json and the README table (no throughput).
    from_json: reuse the counts of an earlier bench.json ('' = recompute).
    readme: README to rewrite ('' = the repository's README.md).
    zoo_json: zoo cache ('' = jaxpose/bench/zoo.json).
  """

  models: str = 'all'
  batch: str = '1'
  dtype: str = 'float32'
  throughput: bool = True
  train: bool = True
  xla: bool = True
  warmup: int = 2
  repeats: int = 5
  iters: int = 3
  peak_size: int = 0
  zoo_markdown: bool = False
  from_json: str = ''
  readme: str = ''
  zoo_json: str = ''


def meta(peaks: dict[str, float]) -> dict[str, Any]:
  import flax
  import jax

  from jaxpose.bench.zoo import REPO

  try:
    commit = subprocess.run(
      ['git', '-C', str(REPO), 'rev-parse', 'HEAD'], capture_output=True, text=True, check=True
    ).stdout.strip()
  except (OSError, subprocess.CalledProcessError):
    commit = ''
  dev = jax.devices()[0]
  return {
    'date': datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds'),
    'commit': commit,
    'jax': jax.__version__,
    'flax': flax.__version__,
    'backend': jax.default_backend(),
    'device': getattr(dev, 'device_kind', str(dev)),
    'num_devices': jax.device_count(),
    'peak_flops': peaks,
    'conventions': {
      'macs_linear': 'Linear/Dense + Conv MACs per clip (thop / torchprofile style)',
      'macs_all': 'all dot_general + conv MACs per clip (fvcore / FlopCounterMode style)',
      'flops_xla': 'XLA cost_analysis flops per clip (2 per MAC + elementwise; scans once)',
      'per_frame': 'per output frame; *_stream = marginal cost over a long sequence',
      'fps': 'output frames per second, median of timed windows after warm-up',
      'mfu': '2 * all-matmul MACs of the step / step time / measured matmul peak',
    },
  }


def _throughput(name, variant, batches, dtypes, peaks, args) -> list[dict[str, Any]]:
  import jax
  import jax.numpy as jnp

  from jaxpose import models
  from jaxpose.bench import throughput as tp

  model = models.build(name, variant)
  x1 = models.example_input(model, batch=1)
  variables = tp.init_variables(model, x1)
  timing = dict(warmup=args.warmup, repeats=args.repeats, iters=args.iters)
  out = []
  for dtype_name in dtypes:
    dtype = jnp.dtype(dtype_name)
    for b in batches:
      rec: dict[str, Any] = {'batch': b, 'dtype': dtype_name}
      x = jax.random.normal(jax.random.key(b), (b, *x1.shape[1:]), jnp.float32)
      kw = dict(dtype=dtype, peak_flops=peaks.get(dtype_name), **timing)
      try:
        rec.update(tp.inference_throughput(model, variables, x, **kw))
        if args.train:
          rec.update(tp.train_throughput(model, variables, x, **kw))
      except Exception as e:  # noqa: BLE001  (e.g. out of memory at a large batch: keep going)
        rec['error'] = f'{type(e).__name__}: {str(e).splitlines()[0][:200]}'
      out.append(rec)
  return out


def _fmt(x: Any, scale: float = 1.0, digits: int = 2, pct: bool = False) -> str:
  if x is None:
    return '-'
  if pct:
    return f'{100 * x:+.1f}%'
  return f'{x / scale:.{digits}f}'


def table(records: list[dict[str, Any]]) -> str:
  cols = [
    ('model', lambda r, t: f'{r["model"]}:{r["variant"]}' if r['variant'] else r['model']),
    ('params M', lambda r, t: _fmt(r.get('params'), 1e6)),
    ('paper', lambda r, t: _fmt(r.get('paper_params'), 1e6)),
    ('d%', lambda r, t: _fmt(r.get('rel_params'), pct=True)),
    ('GMACs lin', lambda r, t: _fmt(r.get('macs_linear'), 1e9, 3)),
    ('paper', lambda r, t: _fmt(r.get('paper_macs_linear'), 1e9, 3)),
    ('d%', lambda r, t: _fmt(r.get('rel_macs_linear'), pct=True)),
    ('GMACs all', lambda r, t: _fmt(r.get('macs_all'), 1e9, 3)),
    ('paper', lambda r, t: _fmt(r.get('paper_macs_all'), 1e9, 3)),
    ('d%', lambda r, t: _fmt(r.get('rel_macs_all'), pct=True)),
    ('MMACs/f lin', lambda r, t: _fmt(r.get('macs_linear_per_frame'), 1e6, 1)),
    ('MMACs/f all', lambda r, t: _fmt(r.get('macs_all_per_frame'), 1e6, 1)),
    ('stream/f', lambda r, t: _fmt(r.get('macs_linear_per_frame_stream'), 1e6, 1)),
    ('XLA GFLOPs', lambda r, t: _fmt(r.get('flops_xla'), 1e9, 3)),
    ('batch', lambda r, t: str(t.get('batch', '-'))),
    ('dtype', lambda r, t: t.get('dtype', '-')),
    ('inf f/s', lambda r, t: _fmt(t.get('infer_fps'), 1, 0)),
    ('train f/s', lambda r, t: _fmt(t.get('train_fps'), 1, 0)),
    ('MFU inf', lambda r, t: _fmt(t.get('infer_mfu'), pct=True).lstrip('+')),
    ('MFU train', lambda r, t: _fmt(t.get('train_mfu'), pct=True).lstrip('+')),
    ('compile s', lambda r, t: _fmt(t.get('infer_compile_s'), 1, 1)),
    ('train compile s', lambda r, t: _fmt(t.get('train_compile_s'), 1, 1)),
  ]
  has_tp = any(r.get('throughput') for r in records)
  if not has_tp:
    cols = cols[:14]
  lines = []
  for r in records:
    for t in r.get('throughput') or [{}]:
      cells = [f(r, t) for _, f in cols]
      if t.get('error'):
        cells.append(t['error'])
      lines.append(cells)
  header = [c for c, _ in cols]
  widths = [max(len(header[i]), *(len(line[i]) for line in lines)) for i in range(len(cols))]
  fmt_line = lambda cells: (
    '  '.join(c.rjust(w) for c, w in zip(cells, widths))
    + ('  ' + cells[-1] if len(cells) > len(widths) else '')
  )
  return '\n'.join([fmt_line(header), *(fmt_line(c) for c in lines)])


def write_outputs(out_dir: pathlib.Path, meta: dict[str, Any], records: list[dict[str, Any]]):
  """bench.json (full) and bench.csv (one line per model/variant/batch/dtype)."""
  out_dir.mkdir(parents=True, exist_ok=True)
  (out_dir / 'bench.json').write_text(json.dumps({'meta': meta, 'rows': records}, indent=1) + '\n')
  flat = []
  for r in records:
    base = {k: v for k, v in r.items() if k != 'throughput'}
    for t in r.get('throughput') or [{}]:
      flat.append({**base, **t})
  keys = list(dict.fromkeys(k for f in flat for k in f))
  with open(out_dir / 'bench.csv', 'w', newline='') as fh:
    w = csv.DictWriter(fh, fieldnames=keys)
    w.writeheader()
    w.writerows(flat)


def update_zoo(specs, records, args: Options) -> None:
  """Merges the records into zoo.json and rewrites the README table between the zoo markers."""
  from jaxpose.bench import zoo

  zoo_path = pathlib.Path(args.zoo_json) if args.zoo_json else zoo.ZOO_JSON
  new = zoo.build_zoo(specs, records)
  merged = zoo.merge_zoo(zoo.load_zoo(zoo_path), new)
  zoo.save_zoo(merged, zoo_path)
  md = zoo.render_markdown(merged)
  readme = pathlib.Path(args.readme) if args.readme else zoo.README
  print(md)
  print(f'wrote {zoo_path}')
  if zoo.update_readme(md, readme):
    print(f'updated the zoo section of {readme}')
  else:
    print(f'{readme}: no {zoo.START} ... {zoo.END} markers; README left untouched', file=sys.stderr)


def run(
  args: Options,
) -> tuple[list[dict[str, Any]], dict[str, float], list[tuple[str, str | None]]]:
  """Computes a bench run: (records, measured peak FLOP/s per dtype, the (model, variant) list).

  A model that fails to build or count gets a record with an `error` instead of stopping the run.
  """
  from tqdm import tqdm

  from jaxpose.bench import throughput as tp
  from jaxpose.bench.zoo import model_row

  specs = parse_models(args.models)
  batches, dtypes = _ints(args.batch), _dtypes(args.dtype)
  do_tp = args.throughput and not args.zoo_markdown
  old = {}
  if args.from_json:
    old = {(r['model'], r['variant']): r for r in json.loads(open(args.from_json).read())['rows']}
  peaks: dict[str, float] = {}
  if do_tp:
    import jax.numpy as jnp

    for d in dtypes:
      peaks[d] = tp.measure_peak_flops(jnp.dtype(d), n=args.peak_size or None)
  records = []
  for name, variant in tqdm(specs, desc='bench', unit='model', disable=len(specs) < 2):
    try:
      rec = old.get((name, variant or '')) or model_row(name, variant, xla=args.xla)
    except Exception as e:  # noqa: BLE001  (a model under construction must not stop the run)
      rec = {'model': name, 'variant': variant or '', 'error': f'{type(e).__name__}: {e}'}
    if do_tp and 'error' not in rec:
      rec['throughput'] = _throughput(name, variant, batches, dtypes, peaks, args)
    records.append(rec)
  return records, peaks, specs
