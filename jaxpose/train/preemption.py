"""Preemption: SIGTERM (and SIGINT) stop a run after its current step, with a checkpoint.

A cloud TPU VM about to be preempted gets SIGTERM, and so does a job that `timeout`, Slurm or
Kubernetes stops. Inside `Guard` the first such signal only sets a flag: the trainer finishes the
step it is in, writes a checkpoint of that step, closes its writers and raises `Preempted`;
`jaxpose train` prints its message and exits with status `EXIT_CODE` (75, EX_TEMPFAIL: try
again). Rerunning the same command resumes from that checkpoint and continues bit for bit like an
uninterrupted run. A second signal acts as usual (SIGINT: KeyboardInterrupt; SIGTERM: the process
ends at once).

Several processes must stop at the same step (a checkpoint is a collective write). There the
notice comes from JAX's own preemption service, started by `jax.distributed.initialize`: it
catches SIGTERM on any process, agrees on a step (`multihost_utils.reached_preemption_sync_point`)
and every process stops there. SIGINT is not caught in a multi-process run (one process alone
cannot stop the others at a common step) and ends it as usual.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

import jax
from jax.experimental import multihost_utils

EXIT_CODE = 75  # sysexits.h EX_TEMPFAIL: a temporary failure; the same command continues the run


class Preempted(Exception):  # noqa: N818 - a stop request, not an error
  """The run stopped early on a signal, after writing a checkpoint of `step`."""

  def __init__(self, step: int, signal_name: str, workdir: str):
    self.step, self.signal_name = step, signal_name
    super().__init__(
      f'jaxpose: stopped by {signal_name} after step {step}; checkpoint {workdir}/ckpt/{step} '
      f'written. Run the same command again to continue.'
    )


class Guard:
  """Context manager that turns SIGTERM/SIGINT into a stop request checked once per step."""

  def __init__(self):
    self.signal_name: str | None = None
    self._previous: dict[int, object] = {}

  def __enter__(self) -> Guard:
    signals = [signal.SIGTERM, signal.SIGINT] if jax.process_count() == 1 else []
    if threading.current_thread() is threading.main_thread():  # signal.signal's requirement
      for sig in signals:
        self._previous[sig] = signal.signal(sig, self._handle)
    return self

  def __exit__(self, *exc) -> None:
    for sig, handler in self._previous.items():
      if signal.getsignal(sig) == self._handle:
        signal.signal(sig, handler)
    self._previous.clear()

  def _handle(self, signum: int, frame: FrameType | None) -> None:
    del frame
    self.signal_name = signal.Signals(signum).name
    signal.signal(signum, self._previous.get(signum, signal.SIG_DFL))  # the next one acts at once
    print(
      f'jaxpose: {self.signal_name} received; finishing the current step and writing a '
      f'checkpoint (send it again to stop at once)',
      file=sys.stderr,
      flush=True,
    )

  def requested(self, step: int) -> bool:
    """Whether to stop after optimiser step `step`; the same answer on every process. Call it
    after every step (the multi-process protocol counts on it)."""
    if jax.process_count() > 1:
      if multihost_utils.reached_preemption_sync_point(step):
        self.signal_name = self.signal_name or 'SIGTERM'
        return True
      return False
    return self.signal_name is not None
