"""gdlab sweep on a real PostgreSQL server: a throwaway cluster (initdb + pg_ctl in a temporary
folder, on a free localhost port, stopped afterwards) holds one study that two worker processes
fill at once; the race to create the tables is forced; a server or database that is not there
gives one line. Skipped, with the reason, where the PostgreSQL binaries or a Python driver are
missing or the server does not start (.ci/run installs Debian's postgresql package)."""

import glob
import importlib.util
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from gdlab.cli import main
from gdlab.lab import sweep

WORKER = ["-m", "gdlab.cli", "sweep", "--layers", "2,5,2,1", "--lr", "1e-3:1e-1",
          "--beta1", "0.8:0.95", "--epochs", "2", "--no-prune"]


def _binaries() -> Path | None:
    """The folder holding initdb and pg_ctl: Debian's /usr/lib/postgresql/<version>/bin
    (newest first), else wherever PATH has them."""
    def version(folder):
        name = Path(folder).parent.name
        return int(name) if name.isdigit() else 0

    folders = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)
    if shutil.which("initdb"):
        folders.append(str(Path(shutil.which("initdb")).parent))
    for folder in folders:
        if all(os.access(Path(folder, name), os.X_OK) for name in ("initdb", "pg_ctl")):
            return Path(folder)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A PostgreSQL cluster in ``folder`` (trust authentication, localhost only, no fsync:
    it lives for one test module). PostgreSQL refuses to run as root, so as root every server
    command runs as the ``postgres`` system user, who owns the folder."""

    def __init__(self, bin_dir: Path, folder: Path):
        self.bin, self.folder, self.data = bin_dir, folder, folder / "data"
        self.log, self.port, self.prefix = folder / "server.log", None, []
        if os.geteuid() == 0:
            import pwd

            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                pytest.skip("running as root and there is no 'postgres' user to run the "
                            "server as (PostgreSQL refuses to run as root)")
            os.chown(folder, user.pw_uid, user.pw_gid)
            if shutil.which("runuser"):
                self.prefix = [shutil.which("runuser"), "-u", "postgres", "--"]
            elif shutil.which("su"):
                self.prefix = ["su", "postgres", "-s", "/bin/sh", "-c"]
            else:
                pytest.skip("running as root with neither runuser nor su to run PostgreSQL "
                            "as the 'postgres' user")

    def run(self, *argv, timeout=60):
        argv = [str(a) for a in argv]
        argv = [*self.prefix, shlex.join(argv)] if self.prefix[:1] == ["su"] else \
            [*self.prefix, *argv]
        # cwd: a folder the postgres user may enter; C locale: no dependence on the machine's
        return subprocess.run(argv, cwd=self.folder, capture_output=True, text=True,
                              timeout=timeout, env={**os.environ, "LC_ALL": "C", "LANG": "C"})

    def start(self) -> str | None:
        """Start the server; None, or why it did not start."""
        done = self.run(self.bin / "initdb", "-D", self.data, "-U", "postgres", "-A", "trust",
                        "-E", "UTF8", "--locale=C", "--no-sync")
        if done.returncode != 0:
            return f"initdb failed: {' '.join((done.stderr or done.stdout).split())[-400:]}"
        why = None
        for _ in range(3):  # another process may take the free port between probe and bind
            self.port = _free_port()
            options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
                       f"-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
            done = self.run(self.bin / "pg_ctl", "-D", self.data, "-l", self.log, "-o",
                            options, "-w", "-t", "30", "start")
            if done.returncode == 0:
                return None
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            why = " ".join((log or done.stderr or done.stdout).split())[-400:]
        self.port = None
        return f"pg_ctl start failed: {why}"

    def stop(self) -> None:
        if self.port is not None:
            self.run(self.bin / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")

    def database(self, name: str) -> str:
        """A new, empty database; its URL names no driver (gdlab picks the installed one, as
        for a user's URL)."""
        done = self.run(self.bin / "createdb", "-h", "127.0.0.1", "-p", self.port, "-U",
                        "postgres", name)
        assert done.returncode == 0, done.stderr
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"


def _driver() -> bool:
    return any(importlib.util.find_spec(m) for m in ("psycopg2", "psycopg"))


@pytest.fixture(scope="module")
def postgres():
    """A fresh PostgreSQL server (a :class:`Cluster`) for this module's tests, or a skip
    saying what is missing."""
    if not _driver():
        pytest.skip("no PostgreSQL driver for Python: pip install psycopg2-binary")
    bin_dir = _binaries()
    if bin_dir is None:
        pytest.skip("PostgreSQL's initdb/pg_ctl not found (Debian: apt-get install postgresql)")
    # not pytest's tmp_path: that is private to this user, and the server may run as postgres
    folder = Path(tempfile.mkdtemp(prefix="gdlab-pg-"))
    cluster = None
    try:
        cluster = Cluster(bin_dir, folder)
        why = cluster.start()
        if why is not None:
            pytest.skip(f"could not start a PostgreSQL server: {why}")
        yield cluster
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _worker(url, out, trials, study="shared"):
    return subprocess.Popen([sys.executable, *WORKER, "--trials", str(trials), "--study", study,
                             "--storage", url, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _ranking(out: Path) -> list[tuple[int, float]]:
    """(trial number, final cost) of each row of a worker's results.csv, best first."""
    rows = (out / "results.csv").read_text().splitlines()[1:]
    return [(int(r.split(",")[1]), float(r.split(",")[3])) for r in rows]


def test_two_workers_share_one_postgres_study(postgres, tmp_path, capsys):
    optuna = pytest.importorskip("optuna")
    postgres_url = postgres.database("workers")
    per_worker = 4
    workers = [_worker(postgres_url, tmp_path / f"w{i}", per_worker) for i in range(2)]
    outputs = [w.communicate(timeout=300) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs

    study = optuna.load_study(study_name="shared", storage=sweep.storage(postgres_url))
    trials = study.get_trials()
    # every trial recorded exactly once, none lost
    assert sorted(t.number for t in trials) == list(range(2 * per_worker))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert len({t._trial_id for t in trials}) == 2 * per_worker
    cost = {t.number: t.value for t in trials}
    best = study.best_trial

    # Each worker ranks the trials finished when it ended: real trials with their stored
    # costs, no duplicates, at least its own. The one that ended last saw them all and names
    # the study's best; so does a worker joining afterwards, with both ranked the same.
    seen = []
    for i, (stdout, _) in enumerate(outputs):
        ranking = _ranking(tmp_path / f"w{i}")
        numbers = [n for n, _ in ranking]
        assert len(set(numbers)) == len(numbers) >= per_worker
        assert all(cost[n] == c for n, c in ranking)
        assert ranking == sorted(ranking, key=lambda r: r[1])
        assert f"{len(ranking)} finished trials" in stdout
        assert f"final cost {ranking[0][1]:.6f}" in stdout
        seen.append(ranking)
    complete = [r for r in seen if len(r) == 2 * per_worker]
    assert complete, [len(r) for r in seen]
    assert all(r[0] == (best.number, best.value) for r in complete)

    # (in this process: one more worker start would add seconds of imports)
    assert main([*WORKER[2:], "--trials", "0", "--study", "shared", "--storage", postgres_url,
                 "--out", str(tmp_path / "w2")]) == 0
    joined = capsys.readouterr().out
    assert f"{2 * per_worker} finished trials" in joined
    assert _ranking(tmp_path / "w2") == complete[0]
    assert f"final cost {best.value:.6f}" in joined


def test_a_worker_that_meets_half_made_tables_retries(postgres, monkeypatch):
    """The creation race, forced: one connection has created the study tables but not yet
    committed; a worker starting then does not see them, creates them too, blocks on
    PostgreSQL's lock, and gets a duplicate key in pg_type when the first commits. It tries
    again and joins the study the first made."""
    import threading

    import optuna
    import sqlalchemy
    from optuna.storages._rdb import models

    url = postgres.database("race")
    failures, opened, storage = [], [], sweep.storage

    def recording(url):
        try:
            return storage(url)
        except Exception as error:
            failures.append(error)
            raise

    monkeypatch.setattr(sweep, "storage", recording)
    engine = sqlalchemy.create_engine(sweep.storage_url(url))
    worker = threading.Thread(target=lambda: opened.append(
        sweep._open_study(url, study_name="race", direction="minimize")))
    with engine.connect() as first, engine.connect() as watcher:
        transaction = first.begin()
        models.BaseModel.metadata.create_all(first)
        worker.start()
        waiting = sqlalchemy.text("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                                  "'race' AND wait_event_type = 'Lock'")
        deadline = time.monotonic() + 60
        while watcher.execute(waiting).scalar() == 0 and time.monotonic() < deadline:
            watcher.rollback()
            time.sleep(0.05)
        transaction.commit()
    worker.join(120)
    engine.dispose()
    assert len(opened) == 1
    assert failures and all(isinstance(e, sqlalchemy.exc.IntegrityError) for e in failures)
    assert "pg_type" in str(failures[0])
    assert optuna.get_all_study_names(storage(url)) == ["race"]


def _bad_storage(url, tmp_path) -> str:
    """Run a worker on ``url``; assert one line on stderr, exit status 2, no traceback and no
    password shown; return the line."""
    done = subprocess.run([sys.executable, *WORKER, "--trials", "1", "--study", "s",
                           "--storage", url, "--out", str(tmp_path / "bad"), "--force"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "secret" not in done.stderr + done.stdout
    return lines[0]


def test_unreachable_postgres_server_is_one_line(tmp_path):
    """Needs no server: nothing listens on the port (or, without a driver, the line says
    which package to install)."""
    line = _bad_storage(f"postgresql://gdlab:secret@127.0.0.1:{_free_port()}/gdlab", tmp_path)
    if _driver():
        assert line.startswith("gdlab sweep: error: cannot connect to the storage "
                               "postgresql://gdlab:***@127.0.0.1:"), line
        assert "Connection refused" in line
    else:
        assert "needs a PostgreSQL driver: pip install psycopg2-binary" in line


def test_missing_postgres_database_is_one_line(postgres, tmp_path):
    url = f"postgresql://postgres:secret@127.0.0.1:{postgres.port}/nodb"
    line = _bad_storage(url, tmp_path)
    assert line.startswith("gdlab sweep: error: cannot connect to the storage "), line
    assert 'database "nodb" does not exist' in line
