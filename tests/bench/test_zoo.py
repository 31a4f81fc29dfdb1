"""The README model zoo cannot drift: README == render(zoo.json) and zoo.json == the registry.

When a model or variant is added or changed, regenerate with `jaxpose bench --zoo_markdown`.
"""

from __future__ import annotations

import pytest

from jaxpose import models
from jaxpose.bench import zoo

REGEN = 'regenerate with `jaxpose bench --zoo_markdown`'


@pytest.fixture(scope='module')
def table():
  return zoo.load_zoo()


def test_readme_section_matches_zoo_json(table):
  if not zoo.README.exists():
    pytest.skip('no README.md')
  section = zoo.readme_section(zoo.README.read_text())
  if section is None:
    pytest.skip(f'README.md has no {zoo.START} ... {zoo.END} markers')
  assert section == zoo.render_markdown(table), f'README zoo table is stale; {REGEN}'


def test_zoo_json_lists_every_registered_variant(table):
  listed = [(r['model'], r['variant']) for r in table['rows']]
  expected = [(n, v or '') for n, v in zoo.all_specs()]
  assert listed == expected, f'zoo.json does not match the registry; {REGEN}'


def test_zoo_json_params_match_registry(table):
  for r in table['rows']:
    n = models.param_count(r['model'], r['variant'] or None)
    assert r['params'] == n, (
      f'{r["model"]}:{r["variant"]}: zoo.json {r["params"]}, model {n}; {REGEN}'
    )


def test_zoo_json_repo_facts_are_current(table):
  for name, facts in table['models'].items():
    now = zoo.registry_facts(name)
    for key in ('title', 'arxiv', 'venue', 'parity_test', 'torch_import', 'config'):
      assert facts[key] == now[key], (
        f'{name}.{key}: zoo.json {facts[key]!r}, now {now[key]!r}; {REGEN}'
      )
    if zoo.parity_dir().is_dir():  # fixtures live outside the repo; check only where present
      assert facts['parity_fixtures'] == now['parity_fixtures'], f'{name}: fixtures; {REGEN}'


@pytest.mark.slow
def test_zoo_json_macs_match_walker(table):
  for r in table['rows']:
    now = zoo.model_row(r['model'], r['variant'] or None)
    for key in ('macs_linear', 'macs_all', 'frames_in', 'frames_out'):
      assert r[key] == now[key], f'{r["model"]}:{r["variant"]}.{key}; {REGEN}'


def _fake_zoo():
  facts = {
    'title': 'Net',
    'venue': 'CVPR 2020',
    'arxiv': '2001.00001',
    'parity_test': True,
    'parity_fixtures': 2,
    'torch_import': True,
    'config': 'configs/net.py',
  }
  row = {
    'model': 'net',
    'variant': 'b',
    'params': 1_500_000,
    'frames_in': 27,
    'frames_out': 1,
    'macs_linear': 2e9,
    'macs_all': 3e9,
    'macs_linear_per_frame': 2e9,
    'macs_all_per_frame': 3e9,
    'macs_linear_per_frame_stream': 5e6,
    'paper_params': 1_500_000,
  }
  return {'models': {'net': facts}, 'rows': [row]}


def test_render_markdown_cells():
  md = zoo.render_markdown(_fake_zoo())
  row = md.splitlines()[2]
  cells = [c.strip() for c in row.strip('|').split('|')]
  assert cells == [
    'net',
    'b',
    '[Net](https://arxiv.org/abs/2001.00001) (CVPR 2020)',
    '27',
    '1.50',
    '1.50',
    '2.00',
    '3.00',
    '5.0 †',
    'yes (2)',
    'yes',
    '[configs/net.py](configs/net.py)',
  ]
  assert '† per output frame' in md


def test_replace_between_markers_only_touches_the_section():
  text = f'# T\nintro\n{zoo.START}\nold\n{zoo.END}\noutro\n'
  new = zoo.replace_between_markers(text, 'NEW\n')
  assert new == f'# T\nintro\n{zoo.START}\nNEW\n{zoo.END}\noutro\n'
  assert zoo.readme_section(new) == 'NEW\n'
  with pytest.raises(ValueError, match='zoo:start'):
    zoo.replace_between_markers('no markers', 'x')


def test_paper_info_from_docstring():
  class M:
    __name__ = 'jaxpose.models.net'
    __doc__ = 'Net: a lifter.\n\nPaper: A, B, "Title", ECCV 2022, arXiv:2203.00859.\nMore.\n'

  assert zoo.paper_info(M) == {'title': 'Net', 'venue': 'ECCV 2022', 'arxiv': '2203.00859'}
