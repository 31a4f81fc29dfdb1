"""MACs per frame vs Human3.6M MPJPE: the accuracy/cost plot the lifting papers draw.

Reads the counts of a `jaxpose bench` run (bench.json, or the committed jaxpose/bench/zoo.json),
the paper's MPJPE of every model + variant (`REFERENCE` in configs/<model>.py, or `mpjpe_mm` in the
model's `PAPER` dict), and optionally jaxpose's own results (workdirs holding config.json and
metrics.jsonl with `eval/mpjpe_mm`). Draws one bubble per model + variant (area ~ parameters), the
Pareto front of the paper points, and our trained results beside them; writes the figure, a CSV
and a markdown table.

  python experiments/flops_vs_mpjpe/plot.py --bench bench_out/bench.json \\
      --workdirs 'runs/*' --out experiments/flops_vs_mpjpe/out
"""

from __future__ import annotations

import csv
import glob
import importlib
import json
import pathlib
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

REPO = pathlib.Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
  sys.path.insert(0, str(REPO))

_MPJPE_KEYS = ('mpjpe_mm', 'mpjpe', 'p1_mm', 'p1')


def _pick(d: Mapping[str, Any], keys: Sequence[str]) -> float | None:
  for k in keys:
    v = d.get(k)
    if isinstance(v, int | float) and not isinstance(v, bool):
      return float(v)
  return None


def reference_mpjpe(
  ref: Any, variant: str, dataset: str = 'h36m', keys: Sequence[str] = _MPJPE_KEYS
) -> float | None:
  """The paper's MPJPE for `variant` on `dataset` from a REFERENCE dict of any common shape.

  Accepted shapes: {variant: {dataset: {mpjpe_mm}}}, {dataset: {mpjpe_mm}}, {variant: {mpjpe_mm}},
  {mpjpe_mm}. A dict keyed by other variants only gives None (no borrowing across variants).
  """
  if not isinstance(ref, Mapping):
    return None
  node: Any = ref
  if isinstance(node.get(variant), Mapping):
    node = node[variant]
  if isinstance(node.get(dataset), Mapping):
    node = node[dataset]
  value = _pick(node, keys)
  if value is not None or node is not ref:
    return value
  return None


def paper_mpjpe(model: str, variant: str, dataset: str = 'h36m') -> tuple[float | None, str]:
  """(MPJPE mm, source) from configs/<model>.py REFERENCE, else the model's PAPER dict."""
  try:
    cfg = importlib.import_module(f'configs.{model}')
    ref = getattr(cfg, 'REFERENCE', None)
  except Exception:  # noqa: BLE001  (no config yet, or one that fails to import)
    ref = None
  v = reference_mpjpe(ref, variant, dataset)
  if v is not None:
    return v, str(ref.get('source', f'configs/{model}.py'))
  try:
    from jaxpose import models

    paper = dict(getattr(models.get_module(model), 'PAPER', {}) or {})
  except Exception:  # noqa: BLE001
    paper = {}
  entry = paper.get(variant)
  if dataset == 'h36m' and isinstance(entry, Mapping):
    v = _pick(entry, _MPJPE_KEYS)
    if v is not None:
      return v, f'jaxpose/models/{model}.py PAPER'
  return None, ''


def per_frame_macs(row: Mapping[str, Any], convention: str = 'linear') -> float | None:
  """MACs per output frame (the long-sequence marginal cost when the model has one)."""
  stream = row.get(f'macs_{convention}_per_frame_stream')
  return stream if stream is not None else row.get(f'macs_{convention}_per_frame')


def pareto_front(points: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
  """Points not dominated by a cheaper-or-equal, at-least-as-accurate point, sorted by cost."""
  front: list[tuple[float, float]] = []
  for x, y in sorted(points, key=lambda p: (p[0], p[1])):
    if not front or y < front[-1][1]:
      front.append((x, y))
  return front


def load_rows(path: pathlib.Path) -> list[dict[str, Any]]:
  """Rows of a bench.json or zoo.json."""
  data = json.loads(path.read_text())
  return [r for r in data.get('rows', []) if 'error' not in r]


def _nested(d: Mapping[str, Any], dotted: str) -> Any:
  for k in dotted.split('.'):
    if not isinstance(d, Mapping) or k not in d:
      return None
    d = d[k]
  return d


def our_results(workdirs: Iterable[str], metric: str = 'eval/mpjpe_mm') -> list[dict[str, Any]]:
  """Best (lowest) `metric` of each workdir with config.json and metrics.jsonl."""
  out = []
  for wd in sorted({p for pattern in workdirs for p in glob.glob(pattern)}):
    wd = pathlib.Path(wd)
    cfg_path, met_path = wd / 'config.json', wd / 'metrics.jsonl'
    if not (cfg_path.exists() and met_path.exists()):
      continue
    cfg = json.loads(cfg_path.read_text())
    values = []
    for line in met_path.read_text().splitlines():
      try:
        rec = json.loads(line)
      except json.JSONDecodeError:
        continue  # a line being written
      v = rec.get(metric)
      if isinstance(v, int | float) and v == v:
        values.append(float(v))
    if values:
      out.append(
        {
          'workdir': str(wd),
          'model': _nested(cfg, 'model.name'),
          'variant': _nested(cfg, 'model.variant') or '',
          'dataset': _nested(cfg, 'data.name') or '',
          'mpjpe_mm': min(values),
        }
      )
  return out


def collect_points(rows, convention='linear', dataset='h36m'):
  """One point per model + variant that has both counts and a paper MPJPE, plus the skipped ones."""
  points, skipped = [], []
  for r in rows:
    mpjpe, source = paper_mpjpe(r['model'], r['variant'], dataset)
    macs = per_frame_macs(r, convention)
    label = f'{r["model"]}-{r["variant"]}' if r['variant'] else r['model']
    if mpjpe is None or macs is None:
      skipped.append(label)
      continue
    points.append(
      {
        'label': label,
        'model': r['model'],
        'variant': r['variant'],
        'params': r['params'],
        'macs_per_frame': macs,
        'mpjpe_mm': mpjpe,
        'source': source,
      }
    )
  return points, skipped


def plot(points, ours, rows, out_png: pathlib.Path, convention: str, dataset: str) -> None:
  import matplotlib

  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  import matplotlib.ticker

  fig, ax = plt.subplots(figsize=(8, 5.5))
  if points:
    xs = [p['macs_per_frame'] / 1e6 for p in points]
    ys = [p['mpjpe_mm'] for p in points]
    sizes = [max(20.0, p['params'] / 1e6 * 15) for p in points]
    models = sorted({p['model'] for p in points})
    cmap = plt.get_cmap('tab10')
    colors = [cmap(models.index(p['model']) % 10) for p in points]
    ax.scatter(xs, ys, s=sizes, c=colors, alpha=0.55, edgecolors='k', linewidths=0.5)
    for i, (p, x, y) in enumerate(sorted(zip(points, xs, ys), key=lambda t: t[1])):
      dy = 5 if i % 2 == 0 else -11  # alternate above/below so neighbours do not overlap
      ax.annotate(p['label'], (x, y), fontsize=7, xytext=(5, dy), textcoords='offset points')
    front = pareto_front(zip(xs, ys))
    if len(front) > 1:
      fx, fy = zip(*front)
      ax.step(fx, fy, where='post', color='0.4', ls='--', lw=1, label='Pareto front (papers)')
  by_spec = {(r['model'], r['variant']): r for r in rows}
  placed = False
  for o in ours:
    r = by_spec.get((o['model'], o['variant']))
    macs = per_frame_macs(r, convention) if r else None
    if macs is None:
      continue
    ax.scatter(
      [macs / 1e6],
      [o['mpjpe_mm']],
      marker='*',
      s=140,
      color='crimson',
      label=None if placed else 'jaxpose (trained)',
      zorder=3,
    )
    ax.annotate(
      f'ours {o["model"]}-{o["variant"]} ({o["dataset"]})',
      (macs / 1e6, o['mpjpe_mm']),
      fontsize=7,
      color='crimson',
      xytext=(4, -10),
      textcoords='offset points',
    )
    placed = True
  ax.set_xscale('log')
  plain = matplotlib.ticker.FuncFormatter(lambda v, _: f'{v:g}')
  # Label only the 2x and 5x minor ticks: every one crowds the axis.
  minor = matplotlib.ticker.FuncFormatter(lambda v, _: f'{v:g}' if f'{v:e}'[0] in '25' else '')
  ax.xaxis.set_major_formatter(plain)
  ax.xaxis.set_minor_formatter(minor)
  ax.tick_params(axis='x', which='minor', labelsize=7)
  ax.set_xlabel(f'MACs per output frame (M, {convention} convention, log scale)')
  ax.set_ylabel(f'MPJPE (mm, {dataset})')
  ax.set_title('Accuracy vs cost; bubble area ~ parameters')
  if not points and not placed:
    ax.text(
      0.5, 0.5, 'no model with both MACs and a reference MPJPE', ha='center', transform=ax.transAxes
    )
  if ax.get_legend_handles_labels()[0]:
    ax.legend(loc='upper right', fontsize=8)
  ax.grid(alpha=0.3, which='both')
  fig.tight_layout()
  out_png.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(out_png, dpi=150)
  plt.close(fig)


def markdown(points, ours) -> str:
  lines = [
    '| model | variant | params (M) | MMACs/frame | MPJPE (mm, paper) | source |',
    '|---|---|---|---|---|---|',
  ]
  for p in sorted(points, key=lambda p: p['macs_per_frame']):
    lines.append(
      f'| {p["model"]} | {p["variant"]} | {p["params"] / 1e6:.2f} | '
      f'{p["macs_per_frame"] / 1e6:.1f} | {p["mpjpe_mm"]:.1f} | {p["source"]} |'
    )
  if ours:
    lines += [
      '',
      '| ours: workdir | model | variant | dataset | best eval/mpjpe_mm |',
      '|---|---|---|---|---|',
    ]
    lines += [
      f'| {o["workdir"]} | {o["model"]} | {o["variant"]} | {o["dataset"]} | {o["mpjpe_mm"]:.1f} |'
      for o in ours
    ]
  return '\n'.join(lines) + '\n'


def main(argv: Sequence[str] | None = None) -> int:
  from absl import flags

  from jaxpose.cli import common

  args = flags.FlagValues()
  flags.DEFINE_string('bench', '', 'bench.json (default: jaxpose/bench/zoo.json)', flag_values=args)
  flags.DEFINE_list('workdirs', [], 'glob(s) of jaxpose training workdirs', flag_values=args)
  flags.DEFINE_enum('macs', 'linear', ['linear', 'all'], 'MAC convention', flag_values=args)
  flags.DEFINE_string(
    'dataset', 'h36m', 'dataset of the reference and of our runs', flag_values=args
  )
  flags.DEFINE_bool('any_dataset', False, 'plot our runs on any dataset', flag_values=args)
  flags.DEFINE_string(
    'out', str(pathlib.Path(__file__).parent / 'out'), 'output dir', flag_values=args
  )
  common.parse(args, [sys.argv[0], *(sys.argv[1:] if argv is None else argv)], __doc__)
  bench = pathlib.Path(args.bench) if args.bench else REPO / 'jaxpose' / 'bench' / 'zoo.json'
  rows = load_rows(bench)
  points, skipped = collect_points(rows, args.macs, args.dataset)
  ours = our_results(args.workdirs)
  if not args.any_dataset:
    ours = [o for o in ours if o['dataset'] == args.dataset]
  out = pathlib.Path(args.out)
  plot(points, ours, rows, out / 'flops_vs_mpjpe.png', args.macs, args.dataset)
  with open(out / 'points.csv', 'w', newline='') as fh:
    keys = ['label', 'model', 'variant', 'params', 'macs_per_frame', 'mpjpe_mm', 'source']
    w = csv.DictWriter(fh, fieldnames=keys)
    w.writeheader()
    w.writerows(points)
  md = markdown(points, ours)
  (out / 'table.md').write_text(md)
  print(md)
  if skipped:
    print(f'no reference MPJPE or MACs (not plotted): {", ".join(skipped)}')
  print(f'wrote {out / "flops_vs_mpjpe.png"}, {out / "points.csv"}, {out / "table.md"}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
