"""`jaxpose bench` command line: model selection, errors, outputs (tiny model sizes)."""

from __future__ import annotations

import csv
import json

import pytest

from jaxpose import cli as top_cli
from jaxpose import models
from jaxpose.bench import report
from jaxpose.cli import bench as cli


def _first_spec():
  from jaxpose.bench.zoo import all_specs

  specs = all_specs()
  if not specs:
    pytest.skip('no model registered yet')
  return specs[0]


def test_parse_models_all_and_variants():
  from jaxpose.bench.zoo import all_specs

  assert report.parse_models('all') == all_specs()
  name, variant = _first_spec()
  vs = list(models.variants(name))
  assert report.parse_models(name) == ([(name, v) for v in vs] or [(name, None)])
  if variant:
    assert report.parse_models(f'{name}:{variant},{name}:{variant}') == [(name, variant)]


def test_unknown_model_and_variant_list_valid_names():
  name, _ = _first_spec()
  with pytest.raises(ValueError, match=f'valid names:.*{name}'):
    report.parse_models('no_such_model')
  if models.variants(name):
    with pytest.raises(ValueError, match='valid variants'):
      report.parse_models(f'{name}:no_such_variant')


def test_bad_batch_and_dtype():
  with pytest.raises(ValueError, match='--batch'):
    report._ints('1,x')
  with pytest.raises(ValueError, match='bfloat16'):
    report._dtypes('float16')


def test_dispatch_unknown_model_exit_code(capsys):
  assert top_cli.main(['bench', '--models', 'no_such_model', '--nothroughput']) == 2
  assert 'valid names' in capsys.readouterr().err


@pytest.fixture
def tiny_models(monkeypatch):
  """Every registered model built with its TEST_OVERRIDES (tiny) so the CLI runs in seconds."""
  build = models.build

  def tiny_build(name, variant=None, **kw):
    over = dict(getattr(models.get_module(name), 'TEST_OVERRIDES', {}) or {})
    return build(name, variant, **{**over, **kw})

  monkeypatch.setattr(models, 'build', tiny_build)


def test_bench_writes_json_csv_and_table(tmp_path, capsys, tiny_models):
  # A convolutional model compiles fastest; any registered one exercises the same code.
  name, variant = ('videopose3d', 'xs') if 'videopose3d' in models.list_models() else _first_spec()
  spec = f'{name}:{variant}' if variant else name
  argv = ['bench', '--models', spec, '--batch', '1,2', '--dtype', 'float32,bfloat16', '--noxla']
  argv += ['--out', str(tmp_path), '--warmup', '1', '--repeats', '1', '--iters', '1']
  argv += ['--peak_size', '64', '--notrain']
  assert cli.main(argv) == 0
  data = json.loads((tmp_path / 'bench.json').read_text())
  assert set(data['meta']['peak_flops']) == {'float32', 'bfloat16'}
  (row,) = data['rows']
  assert (row['model'], row['variant']) == (name, variant or '')
  assert row['macs_all'] >= row['macs_linear'] > 0
  assert row['macs_linear'] == row['macs_dense'] + row['macs_conv']
  tps = row['throughput']
  assert [(t['batch'], t['dtype']) for t in tps] == [
    (1, 'float32'),
    (2, 'float32'),
    (1, 'bfloat16'),
    (2, 'bfloat16'),
  ]
  assert all(t['infer_fps'] > 0 and 'train_fps' not in t for t in tps), tps
  with open(tmp_path / 'bench.csv') as fh:
    lines = list(csv.DictReader(fh))
  assert len(lines) == 4 and lines[0]['model'] == name
  out = capsys.readouterr().out
  assert 'GMACs lin' in out and 'inf f/s' in out


def test_bench_render_flag_writes_render_json(tmp_path, capsys):
  """`jaxpose bench --render` times the soft rasteriser (tiny mesh and image here)."""
  argv = ['bench', '--render', '--render_size=16', '--render_vertices=40', '--batch=2']
  assert cli.main([*argv, '--repeats=1', '--warmup=0', f'--out={tmp_path}']) == 0
  res = json.loads((tmp_path / 'render.json').read_text())
  assert res['num_faces'] == 76 and res['batch'] == 2 and res['image_size'] == 16
  assert res['fwd_per_image_s'] > 0 and res['fwd_bwd_per_image_s'] > 0
  assert 'soft rasteriser: 76 faces, 16 px, batch 2' in capsys.readouterr().out
