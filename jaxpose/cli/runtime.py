"""Process set-up for the command lines: keep XLA:CPU's per-step buffers out of the page-fault path.

XLA:CPU allocates each executable's temporaries (2.5 GB for a MotionAGFormer-XS training step at
batch 16) with `malloc` on every call and frees them afterwards. glibc serves an allocation that
large with a fresh `mmap` and returns it with `munmap`, so every step touches about 700k new
4 KiB pages: 0.7 s of a 3 s step went to page faults and zeroing on this 2-core machine
(`perf stat -e page-faults`, experiments/torch_vs_jax). PyTorch's step did not have the cost.

glibc keeps freed memory for reuse when large allocations come from the heap instead of `mmap`
(`glibc.malloc.mmap_max=0`), the heap is never trimmed (`trim_threshold`), and every thread uses
the main arena (`arena_max=1`: other arenas fall back to `mmap` for blocks over 64 MB). These
tunables are read once at process start, so `maybe_reexec` sets `GLIBC_TUNABLES` and re-executes
the command once. The process then keeps its peak memory for its lifetime, which a training run
reaches anyway on its first step.

Opt out with JAXPOSE_HOST_MALLOC=system. Nothing happens on non-Linux or non-glibc systems, or
when GLIBC_TUNABLES already sets `glibc.malloc.mmap_max`.
"""

from __future__ import annotations

import os
import platform
import sys

TUNABLES = (
  'glibc.malloc.mmap_max=0',
  'glibc.malloc.trim_threshold=68719476736',
  'glibc.malloc.arena_max=1',
)
ENV_OPT_OUT = 'JAXPOSE_HOST_MALLOC'


def tunables_env(environ: dict[str, str] | None = None) -> dict[str, str] | None:
  """The environment to re-execute with, or None when nothing should change.

  Args:
    environ: the current environment (default `os.environ`).

  Returns:
    A copy of `environ` with TUNABLES appended to GLIBC_TUNABLES, or None when opted out, not on
    Linux with glibc, or when GLIBC_TUNABLES already sets `glibc.malloc.mmap_max`.
  """
  env = dict(os.environ if environ is None else environ)
  if env.get(ENV_OPT_OUT, '').lower() == 'system':
    return None
  if sys.platform != 'linux' or platform.libc_ver()[0] != 'glibc':
    return None
  current = env.get('GLIBC_TUNABLES', '')
  if 'glibc.malloc.mmap_max' in current:
    return None
  env['GLIBC_TUNABLES'] = ':'.join(filter(None, [current, *TUNABLES]))
  return env


def maybe_reexec() -> None:
  """Re-executes this process once with the allocator tunables (see the module docstring).

  Call it first thing from a console entry point, never from library code or tests: the process
  image is replaced (the same interpreter and command line, `sys.orig_argv`).
  """
  env = tunables_env()
  if env is None:
    return
  sys.stdout.flush()
  sys.stderr.flush()
  os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
