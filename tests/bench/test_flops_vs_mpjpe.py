"""experiments/flops_vs_mpjpe/plot.py: reference lookup, Pareto front, workdirs, robustness."""

from __future__ import annotations

import importlib.util
import json
import pathlib

import pytest

_PATH = pathlib.Path(__file__).resolve().parents[2] / 'experiments' / 'flops_vs_mpjpe' / 'plot.py'
_spec = importlib.util.spec_from_file_location('flops_vs_mpjpe_plot', _PATH)
fvm = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fvm)


@pytest.mark.parametrize(
  'ref,variant,expected',
  [
    ({'b': {'h36m': {'mpjpe_mm': 38.4}}, 'source': 's'}, 'b', 38.4),
    ({'b': {'h36m': {'mpjpe_mm': 38.4}}}, 'xs', None),  # no borrowing from another variant
    ({'h36m': {'mpjpe_mm': 40.0}}, 'any', 40.0),
    ({'b': {'mpjpe_mm': 41.0}}, 'b', 41.0),
    ({'mpjpe_mm': 42.0, 'source': 'x'}, 'b', 42.0),
    ({'b': {'mpi_inf_3dhp': {'mpjpe_mm': 18.2}}}, 'b', None),
    ({'b': {'h36m': {'mpjpe_mm': 'n/a'}}}, 'b', None),
    (None, 'b', None),
  ],
)
def test_reference_mpjpe_shapes(ref, variant, expected):
  assert fvm.reference_mpjpe(ref, variant) == expected


def test_pareto_front():
  pts = [(10, 50), (20, 45), (30, 47), (40, 40), (40, 39), (50, 39)]
  assert fvm.pareto_front(pts) == [(10, 50), (20, 45), (40, 39)]
  assert fvm.pareto_front([]) == []


def test_per_frame_prefers_stream():
  assert fvm.per_frame_macs({'macs_linear_per_frame': 5.0}) == 5.0
  row = {'macs_linear_per_frame': 5.0, 'macs_linear_per_frame_stream': 2.0}
  assert fvm.per_frame_macs(row) == 2.0


def test_our_results_takes_best_eval(tmp_path):
  wd = tmp_path / 'run1'
  wd.mkdir()
  cfg = {'model': {'name': 'net', 'variant': 'b'}, 'data': {'name': 'h36m'}}
  (wd / 'config.json').write_text(json.dumps(cfg))
  lines = [
    {'step': 1, 'train/loss': 1.0},
    {'step': 2, 'eval/mpjpe_mm': 50.0},
    {'step': 3, 'eval/mpjpe_mm': 44.5},
  ]
  (wd / 'metrics.jsonl').write_text('\n'.join(json.dumps(r) for r in lines) + '\n{"trunc')
  (tmp_path / 'empty').mkdir()
  (res,) = fvm.our_results([str(tmp_path / '*')])
  assert (res['model'], res['variant'], res['dataset'], res['mpjpe_mm']) == (
    'net',
    'b',
    'h36m',
    44.5,
  )


@pytest.mark.parametrize('n_rows', [0, 1])
def test_main_is_robust_to_few_models(tmp_path, n_rows, monkeypatch):
  good = {'model': 'net', 'variant': 'b', 'params': 2e6, 'macs_linear_per_frame': 3e7}
  rows = [good] * n_rows + [{'model': 'broken', 'variant': '', 'error': 'x'}]
  bench = tmp_path / 'bench.json'
  bench.write_text(json.dumps({'rows': rows}))
  monkeypatch.setattr(fvm, 'paper_mpjpe', lambda m, v, d='h36m': (45.0, 'test'))
  out = tmp_path / 'out'
  assert fvm.main(['--bench', str(bench), '--out', str(out)]) == 0
  assert (out / 'flops_vs_mpjpe.png').stat().st_size > 0
  assert len((out / 'points.csv').read_text().splitlines()) == 1 + n_rows
