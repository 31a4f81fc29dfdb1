"""The allocator re-exec of the command lines (jaxpose/cli/runtime.py)."""

import os
import subprocess
import sys

import pytest

from jaxpose.cli import runtime

linux_glibc = pytest.mark.skipif(runtime.tunables_env({}) is None, reason='needs Linux with glibc')


@linux_glibc
def test_tunables_are_appended_to_existing_ones():
  env = runtime.tunables_env({'GLIBC_TUNABLES': 'glibc.malloc.tcache_count=0', 'X': '1'})
  assert env['X'] == '1'
  parts = env['GLIBC_TUNABLES'].split(':')
  assert parts[0] == 'glibc.malloc.tcache_count=0'
  assert parts[1:] == list(runtime.TUNABLES)


def test_opt_out_and_user_settings_are_respected():
  assert runtime.tunables_env({runtime.ENV_OPT_OUT: 'system'}) is None
  assert runtime.tunables_env({'GLIBC_TUNABLES': 'glibc.malloc.mmap_max=5'}) is None


_PROBE = (
  'import os; from jaxpose.cli import runtime; runtime.maybe_reexec(); '
  "print('TUNABLES=' + os.environ.get('GLIBC_TUNABLES', ''))"
)


def _probe(extra_env):
  env = {k: v for k, v in os.environ.items() if k != 'GLIBC_TUNABLES'}
  env.update(extra_env)
  out = subprocess.run(
    [sys.executable, '-c', _PROBE], env=env, capture_output=True, text=True, check=True
  )
  return out.stdout.strip().splitlines()


@linux_glibc
def test_reexec_runs_the_same_command_once_with_the_tunables():
  lines = _probe({})
  assert lines == ['TUNABLES=' + ':'.join(runtime.TUNABLES)]  # printed once: one re-exec


def test_no_reexec_when_opted_out():
  assert _probe({runtime.ENV_OPT_OUT: 'system'}) == ['TUNABLES=']
