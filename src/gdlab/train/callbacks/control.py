"""Watching and steering a running fit from another process: ``status.json`` and
``control.json`` in its run folder.

The lecture's *manual decay* — someone watching a long run cuts α by hand — works across
processes: ``request_lr(run_dir, lr)`` (or ``gdlab lr RUN_DIR LR``) writes ``control.json``
atomically; the :class:`LiveControl` callback of the running fit polls it from a background
thread every ``poll`` seconds (a ``stat`` call, no work in the training loop) and calls
``Fit.set_lr``, which applies α from the next mini-batch and records a ``set_lr`` event in
the history. The run prints an acknowledgement and reports it in ``status.json``.

``status.json`` (rewritten atomically about every second and at each end): state
("running", "finished", "stopped", "interrupted", "diverged", "failed"), epoch, epochs, the
mini-batch step t, α, the smoothed cost, elapsed time and ETA. ``read_status`` reads it and
says whether the process is still alive.
"""

from __future__ import annotations

import json
import math
import os
import socket
import sys
import threading
import time
import uuid
from pathlib import Path

from ..._checks import check_positive
from ..._files import atomic_write

CONTROL = "control.json"
STATUS = "status.json"

__all__ = ["LiveControl", "request_lr", "read_status", "format_status", "CONTROL", "STATUS"]


def _number(value):
    """A float for JSON (None for NaN/inf, which JSON cannot hold)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _pid_alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    except OSError:
        return False
    return True


def read_status(run_dir) -> dict:
    """The run's ``status.json`` plus ``"alive"``: whether a "running" run's process still
    exists (False after a crash or a kill). ValueError if there is none or it is unreadable."""
    path = Path(run_dir) / STATUS
    try:
        status = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{run_dir} has no {STATUS}: it is not a run folder written by "
                         f"gdlab fit") from None
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot read {path}: {' '.join(str(e).split())}") from None
    if not isinstance(status, dict) or "state" not in status:
        raise ValueError(f"{path} is not a gdlab status file")
    alive = False
    if status["state"] == "running":
        if status.get("host") == socket.gethostname():
            alive = _pid_alive(status.get("pid"))
        else:  # another machine: trust a recent heartbeat
            alive = time.time() - float(status.get("updated", 0)) < 60
    status["alive"] = alive
    return status


def _duration(seconds) -> str:
    if seconds is None:
        return "—"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def format_status(status: dict, run_dir=None) -> str:
    """What ``gdlab status`` prints: state, epoch, smoothed cost, α, elapsed time and ETA."""
    state = status["state"]
    if state == "running" and not status.get("alive", True):
        state = (f"not running (process {status.get('pid')} is gone; resume with "
                 f"gdlab fit --resume {run_dir or 'RUN_DIR'})")
    elif state == "running":
        state = f"running (process {status.get('pid')})"
    cost = status.get("smoothed_cost")
    lines = [f"state:          {state}",
             f"epoch:          {status.get('epoch')} of {status.get('epochs')} "
             f"(mini-batch step t = {status.get('t')})",
             f"smoothed cost:  {'—' if cost is None else f'{cost:.6g}'}",
             f"α:              {status.get('lr'):.6g}" if status.get("lr") is not None
             else "α:              —",
             f"elapsed:        {_duration(status.get('elapsed_s'))}"]
    if status["state"] == "running" and status.get("alive", True):
        lines.append(f"ETA:            {_duration(status.get('eta_s'))}")
    if status.get("message"):
        lines.append(f"note:           {status['message']}")
    request = status.get("lr_request")
    if request and request.get("epoch") is not None:
        lines.append(f"last α request: {request['lr']:.6g}, applied from epoch "
                     f"{request['epoch']}, mini-batch t = {request['t']}")
    elif request:
        lines.append(f"last α request: {request['lr']:.6g}, not applied yet")
    return "\n".join(lines)


def request_lr(run_dir, lr: float, *, wait: float = 0.0) -> dict:
    """Ask the fit running in ``run_dir`` to use α = ``lr`` from its next mini-batch on.

    Writes ``control.json`` atomically and returns the request ``{"id", "lr", "time"}``. With
    ``wait`` > 0, waits up to that many seconds for the run to apply it and returns the
    request with ``"epoch"`` and ``"t"`` (where α changed) added, if it did in time.
    ValueError if ``lr`` is not > 0 or ``run_dir`` is not a folder.
    """
    lr = check_positive("lr", lr)
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ValueError(f"{run_dir} is not a folder: give the run folder of a running fit")
    request = {"id": uuid.uuid4().hex, "lr": lr, "time": time.time()}
    atomic_write(run_dir / CONTROL, json.dumps(request) + "\n", durable=False)
    deadline = time.monotonic() + float(wait)
    while time.monotonic() < deadline:
        try:
            acked = json.loads((run_dir / STATUS).read_text()).get("lr_request") or {}
        except (OSError, ValueError, AttributeError):
            acked = {}
        if acked.get("id") == request["id"] and acked.get("epoch") is not None:
            return {**request, "epoch": acked["epoch"], "t": acked["t"]}
        time.sleep(0.02)
    return request


class LiveControl:
    """Callback: write ``status.json`` and obey ``control.json`` in ``run_dir`` while the fit
    runs (see the module's docstring).

    poll: seconds between two looks at ``control.json`` (a ``stat``; 0.2 by default, so a
    request applies within about 0.2 s, at the next mini-batch). status_every: seconds between
    two rewrites of ``status.json``. echo: ``print``-like function for the acknowledgements,
    None to stay silent (default: a line on stdout that leaves a progress bar intact).
    """

    def __init__(self, run_dir, *, poll: float = 0.2, status_every: float = 1.0,
                 echo="default"):
        self.run_dir = Path(run_dir)
        self.poll = check_positive("poll", poll)
        self.status_every = check_positive("status_every", status_every)
        self.echo = _default_echo if echo == "default" else echo
        self._thread = None
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._run = None
        self._seen = None  # (mtime_ns, size) of the control file last read
        self._seen_id = None
        self._request = None  # the last request taken, as reported in status.json
        self._events_seen = 0
        self._last_status = 0.0

    # --- the fit's side ---------------------------------------------------------------------

    def on_fit_start(self, run) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._run = run
        self._session_start = time.monotonic()
        self._session_epoch = run.epoch_num
        self._elapsed_before = run.history.times[-1] if run.history.times else 0.0
        self._eta = None
        self._events_seen = len(run.history.events)
        self._seen, self._seen_id = self._control_stat(), self._control_id()  # old requests
        self._done.clear()
        self._write_status("running")
        self._thread = threading.Thread(target=self._loop, name="gdlab-live-control",
                                        daemon=True)
        self._thread.start()

    def on_epoch_end(self, run) -> None:
        done = run.epoch_num - self._session_epoch
        if done > 0:
            per_epoch = (time.monotonic() - self._session_start) / done
            self._eta = per_epoch * max(run.epochs - run.epoch_num, 0)

    def on_interrupt(self, run) -> None:
        self._finish("interrupted")

    def on_fit_end(self, run) -> None:
        if run.diverged is not None:
            state = "diverged"
        elif run.epoch_num >= run.epochs:
            state = "finished"
        elif run.interrupted:
            state = "interrupted"
        else:
            state = "stopped"
        self._finish(state)

    def _finish(self, state: str) -> None:
        self._done.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._thread = None
        self._check_applied()
        self._write_status(state)

    # --- the background thread --------------------------------------------------------------

    def _loop(self) -> None:
        run = self._run
        while not self._done.wait(self.poll):
            if not run.running:  # the fit ended by an exception: say so and stop
                self._check_applied()
                if run.interrupted:
                    self._write_status("interrupted")
                else:
                    self._write_status("failed", message="the fit stopped with an error")
                return
            try:
                self._check_control()
                self._check_applied()
                if time.monotonic() - self._last_status >= self.status_every:
                    self._write_status("running")
            except Exception as e:  # noqa: BLE001 - never let the watcher kill the run
                self._say(f"gdlab: live control: {' '.join(str(e).split())}")

    def _control_stat(self):
        try:
            st = os.stat(self.run_dir / CONTROL)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def _control_id(self):
        try:
            return json.loads((self.run_dir / CONTROL).read_text()).get("id")
        except (OSError, ValueError, AttributeError):
            return None

    def _check_control(self) -> None:
        stat = self._control_stat()
        if stat is None or stat == self._seen:
            return
        self._seen = stat
        try:
            request = json.loads((self.run_dir / CONTROL).read_text())
            lr = check_positive("lr", request["lr"])
            request_id = str(request.get("id", stat))
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
            self._say(f"gdlab: ignored {self.run_dir / CONTROL}: "
                      f"{' '.join(str(e).split()) or type(e).__name__}")
            return
        if request_id == self._seen_id:
            return
        self._seen_id = request_id
        run = self._run
        self._events_seen = len(run.history.events)
        run.set_lr(lr)
        self._request = {"id": request_id, "lr": lr, "epoch": None, "t": None}
        self._write_status("running")

    def _check_applied(self) -> None:
        request, run = self._request, self._run
        if request is None or request["epoch"] is not None or run is None:
            return
        events = run.history.events
        start = min(self._events_seen, len(events))
        for event in events[start:]:
            if event.get("event") == "set_lr" and event.get("lr") == request["lr"]:
                request.update(epoch=event["epoch"], t=event["t"])
                self._say(f"gdlab: α = {request['lr']:.6g} from epoch {event['epoch']}, "
                          f"mini-batch t = {event['t']} (was {event['old_lr']:.6g}; "
                          f"requested through {self.run_dir / CONTROL})")
                self._write_status("running")
                return

    def _say(self, text: str) -> None:
        if self.echo is not None:
            self.echo(text)

    def _write_status(self, state: str, message: str | None = None) -> None:
        run = self._run
        if run is None:
            return
        with self._lock:
            elapsed = self._elapsed_before + time.monotonic() - self._session_start
            history = run.history
            smoothed = run.smoothed_cost.current() if run.smoothed_cost.t else None
            diverged = run.diverged
            if message is None and state == "diverged" and diverged is not None:
                message = diverged.get("message")
            status = {
                "state": state, "pid": os.getpid(), "host": socket.gethostname(),
                "epoch": run.epoch_num if state != "running" else len(history.epoch_costs),
                "epochs": run.epochs, "t": run.t, "lr": _number(run.lr),
                "smoothed_cost": _number(smoothed),
                "epoch_cost": _number(history.epoch_costs[-1]) if history.epoch_costs else None,
                "elapsed_s": round(elapsed, 3),
                "eta_s": None if self._eta is None or state != "running" else round(self._eta, 1),
                "updated": time.time(), "lr_request": self._request, "message": message,
            }
            try:
                atomic_write(self.run_dir / STATUS, json.dumps(status, indent=1) + "\n",
                             durable=False)
            except OSError:
                pass  # a full disk must not stop the training
            self._last_status = time.monotonic()


def _default_echo(text: str) -> None:
    try:
        from tqdm import tqdm

        tqdm.write(text, file=sys.stdout)
    except Exception:  # noqa: BLE001
        print(text, flush=True)
    sys.stdout.flush()
