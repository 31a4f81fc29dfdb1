"""Test set-up: 8 fake CPU devices (so sharding code runs), hypothesis profiles, shared paths."""

import os

# Must happen before jax is imported anywhere.
os.environ.setdefault('JAX_PLATFORMS', 'cpu')
_flags = os.environ.get('XLA_FLAGS', '')
if '--xla_force_host_platform_device_count' not in _flags:
  os.environ['XLA_FLAGS'] = (_flags + ' --xla_force_host_platform_device_count=8').strip()
# A persistent XLA compilation cache for the session (and the subprocesses it starts): the xdist
# workers, the repeated trainer runs of the resume tests and the smoke configs compile identical
# programs, and compilation dominates the suite. JAXPOSE_TEST_XLA_CACHE=0 turns it off.
_cache = os.environ.get('JAXPOSE_TEST_XLA_CACHE', '')
if _cache != '0':
  import tempfile

  _cache = _cache or os.path.join(tempfile.gettempdir(), f'jaxpose-test-xla-cache-{os.getuid()}')
  os.environ.setdefault('JAX_COMPILATION_CACHE_DIR', _cache)
  os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '1')

import pathlib  # noqa: E402

import jax  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

jax.config.update('jax_enable_x64', False)

settings.register_profile(
  'ci', max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile('ci')

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = pathlib.Path(os.environ.get('JAXPOSE_SHARED_DIR', REPO.parent / 'shared'))


def parity_dir() -> pathlib.Path:
  return pathlib.Path(os.environ.get('JAXPOSE_PARITY_DIR', SHARED / 'fixtures' / 'parity'))


@pytest.fixture(scope='session')
def shared_dir() -> pathlib.Path:
  if not SHARED.exists():
    pytest.skip(f'shared directory {SHARED} not present')
  return SHARED


def pytest_terminal_summary(terminalreporter) -> None:
  """One line: where the parity fixtures were looked for and how many parity tests ran (a fresh
  clone without ../shared skips them all, which is otherwise easy to miss)."""
  stats = terminalreporter.stats
  is_parity = lambda r: 'parity' in getattr(r, 'keywords', {})
  ran = sum(
    1
    for key in ('passed', 'failed')
    for r in stats.get(key, [])
    if getattr(r, 'when', 'call') == 'call' and is_parity(r)
  )
  skipped = sum(1 for r in stats.get('skipped', []) if is_parity(r))
  if not ran and not skipped:
    return
  d = parity_dir()
  found = len(list(d.glob('*.npz'))) if d.is_dir() else 0
  where = f'{d} ({found} fixture files)' if d.is_dir() else f'{d} (absent: set JAXPOSE_PARITY_DIR)'
  terminalreporter.write_line(f'parity: {ran} tests ran, {skipped} skipped; fixtures in {where}')


@pytest.fixture(scope='session')
def data_dir(tmp_path_factory) -> pathlib.Path:
  """h36m/gt, h36m/sh and mpi_inf_3dhp built from synthetic files (session-wide, built on first use)."""
  import tensorflow_datasets as tfds

  from jaxpose.data import build, synthetic

  tfds.disable_progress_bar()
  manual = tmp_path_factory.mktemp('manual')
  synthetic.write_h36m_vp3d(manual, sources=('gt',), num_frames=40)
  synthetic.write_h36m_sh(manual)
  synthetic.write_mpi_inf_3dhp(manual, num_frames=30)
  out = tmp_path_factory.mktemp('tfds')
  build.build('h36m', 'gt', manual, out)
  build.build('h36m', 'sh', manual, out)
  build.build('mpi_inf_3dhp', None, manual, out)
  return out


@pytest.fixture(scope='session')
def render_dir(tmp_path_factory) -> pathlib.Path:
  """deepmimic_render/tiny (rendered multi-view crops), built once per session; read-only."""
  import tensorflow_datasets as tfds

  from jaxpose.data import build, image_pipeline

  tfds.disable_progress_bar()
  out = tmp_path_factory.mktemp('render')
  build.ensure_built('deepmimic_render', out, 'tiny')
  yield out
  image_pipeline.clear_stores()
