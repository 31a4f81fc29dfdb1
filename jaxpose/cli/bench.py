"""`jaxpose bench`: parameters, MACs (two conventions), XLA FLOPs, throughput, MFU, the zoo table.

Usage:
  jaxpose bench [--models all|NAME[:VARIANT],...] [--batch 1,16] [--dtype float32,bfloat16]
                [--out DIR] [--nothroughput] [--notrain] [--zoo_markdown] [--from_json FILE]
  jaxpose bench --render [--batch 1] [--render_size 224] [--render_vertices 6890] [--out DIR]

`--models`: `all` (default) is every registered model and variant; `NAME` alone is every variant of
that model; `NAME:VARIANT` one variant. Unknown names list the valid ones.

Writes DIR/bench.json (meta + one record per model/variant with its counts, the paper's numbers,
relative differences, and a `throughput` list per batch and dtype) and DIR/bench.csv (one line per
model/variant/batch/dtype), and prints a table (jaxpose/bench/report.py). MACs are per clip at
batch 1 in inference mode; "lin" is Linear/Conv only (thop, what papers print), "all" adds
activation matmuls (fvcore). Throughput protocol and MFU: see jaxpose/bench/throughput.py.

`--zoo_markdown` skips throughput, refreshes jaxpose/bench/zoo.json for the selected models (all by
default), rewrites the README between `<!-- zoo:start -->` and `<!-- zoo:end -->` and prints the
table (see jaxpose/bench/zoo.py). With `--from_json` the counts are read from an earlier bench.json
instead of being recomputed.

`--render` benchmarks the soft rasteriser instead (jaxpose/bench/render.py): forward and backward
time per image and peak memory of `soft_render` at DSR's setting (a body-sized closed mesh of
`--render_vertices` vertices and 2V - 4 faces, `--render_size` pixels, 9 channels, sigma 1e-5,
gamma 0.1) for the first `--batch` value, `--warmup` and `--repeats` calls; writes DIR/render.json
and prints one line (experiments/soft_rasteriser has the table over settings).
"""

from __future__ import annotations

import dataclasses
import pathlib
import sys
from collections.abc import Sequence

from absl import flags

from jaxpose.cli import common


def make_flags() -> flags.FlagValues:
  fv = flags.FlagValues()
  flags.DEFINE_string('models', 'all', "'all' or name[:variant],...", flag_values=fv)
  flags.DEFINE_string('batch', '1', 'batch sizes for throughput, e.g. 1,16', flag_values=fv)
  flags.DEFINE_string('dtype', 'float32', 'float32,bfloat16', flag_values=fv)
  flags.DEFINE_string('out', 'bench_out', 'output directory', flag_values=fv)
  flags.DEFINE_bool(
    'throughput', True, 'measure throughput (--nothroughput: counts only)', flag_values=fv
  )
  flags.DEFINE_bool('train', True, 'time the training step too', flag_values=fv)
  flags.DEFINE_bool('xla', True, "XLA's cost analysis (one lowering)", flag_values=fv)
  flags.DEFINE_integer('warmup', 2, 'untimed calls after compiling', flag_values=fv)
  flags.DEFINE_integer('repeats', 5, 'timed windows; the median is reported', flag_values=fv)
  flags.DEFINE_integer('iters', 3, 'calls per timed window', flag_values=fv)
  flags.DEFINE_integer('peak_size', 0, 'side of the peak matmul (0: auto)', flag_values=fv)
  flags.DEFINE_bool('zoo_markdown', False, 'refresh zoo.json and the README table', flag_values=fv)
  flags.DEFINE_string('from_json', '', 'reuse counts from an earlier bench.json', flag_values=fv)
  flags.DEFINE_string(
    'readme', '', 'README to rewrite (default: the repo README.md)', flag_values=fv
  )
  flags.DEFINE_string('zoo_json', '', 'zoo cache (default jaxpose/bench/zoo.json)', flag_values=fv)
  flags.DEFINE_bool('render', False, 'benchmark the soft rasteriser instead', flag_values=fv)
  flags.DEFINE_integer('render_size', 224, '--render: image side, pixels', flag_values=fv)
  flags.DEFINE_integer('render_vertices', 6890, '--render: mesh vertices', flag_values=fv)
  return fv


def run_render(fv: flags.FlagValues) -> int:
  """`jaxpose bench --render`: one `bench_render` measurement, DIR/render.json, one line."""
  import json

  from jaxpose.bench import render

  batch = int(fv.batch.split(',')[0])
  vertices, faces = render.body_sized_mesh(fv.render_vertices)
  res = render.bench_render(
    vertices,
    faces,
    batch=batch,
    image_size=fv.render_size,
    warmup=fv.warmup,
    repeats=fv.repeats,
  )
  out = pathlib.Path(fv.out)
  out.mkdir(parents=True, exist_ok=True)
  (out / 'render.json').write_text(json.dumps(res, indent=2, sort_keys=True))
  print(
    f'soft rasteriser: {res["num_faces"]} faces, {fv.render_size} px, batch {batch}: forward '
    f'{res["fwd_per_image_s"] * 1e3:.1f} ms/image, forward+backward '
    f'{res["fwd_bwd_per_image_s"] * 1e3:.1f} ms/image, peak RSS '
    f'{res["peak_rss_bytes"] / 1e6:.0f} MB; wrote {out / "render.json"}'
  )
  return 0


def main(argv: Sequence[str] | None = None) -> int:
  """`jaxpose bench`; argv = ['bench', *flags] as dispatched by jaxpose.cli."""
  from jaxpose.bench import report

  argv = list(sys.argv[1:] if argv is None else argv)
  if not argv or argv[0] != 'bench':
    argv = ['bench', *argv]
  fv = make_flags()
  common.parse(fv, ['jaxpose bench', *argv[1:]], __doc__)
  if fv.render:
    return run_render(fv)
  options = report.Options(
    **{f.name: getattr(fv, f.name) for f in dataclasses.fields(report.Options)}
  )
  try:
    records, peaks, specs = report.run(options)
  except ValueError as e:
    return common.error('jaxpose bench', str(e))
  out = pathlib.Path(fv.out)
  report.write_outputs(out, report.meta(peaks), records)
  print(report.table(records))
  print(f'wrote {out / "bench.json"} and {out / "bench.csv"}')
  failed = [r for r in records if 'error' in r]
  for r in failed:
    print(f'{r["model"]}:{r["variant"]}: {r["error"]}', file=sys.stderr)
  if options.zoo_markdown:
    if failed:
      print('jaxpose bench: not writing the zoo while models fail', file=sys.stderr)
      return 1
    report.update_zoo(specs, records, options)
  return 1 if failed else 0
