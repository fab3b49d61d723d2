"""A throwaway Postgres and Redis for running Dify's api/ end to end (its apps need both: the
accounts, apps, conversations and workflow runs live in Postgres; the rate limiter, the caches and
the streamed answers' pub/sub in Redis), and Dify's own migrations run on them.

Postgres is a new cluster in a temporary folder (initdb, then pg_ctl on a free port, its unix socket
in that folder, trust authentication); Postgres refuses to run as root, so as root its programs run
as the `postgres` system user (runuser). Redis is a redis-server on a free port that keeps nothing on
disk. Both end, and the folder goes, on stop().

From pytest (`missing()` names what is absent, for a skip):

    services = start(api)       # api: Dify's api/ folder; also runs the migrations (half a minute)
    env = services.env          # what a Dify process reads (DB_*, REDIS_*, STORAGE_*, ...)
    services.reset()            # a fresh, migrated database and an empty Redis again, in a second
    services.stop()

By hand (Dify's api/ as the command's folder and on its PYTHONPATH):

    python dify_services.py API_DIR command ...   # runs the command with that env, then stops all
    python dify_services.py API_DIR               # prints that env as export lines; up until killed
"""

from __future__ import annotations

import glob
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

USAGE = "usage: python dify_services.py API_DIR [command ...]"
DATABASE = "dify"
TEMPLATE = "dify_migrated"  # the database as the migrations left it, to start again from (reset)
PG_USER = "postgres"  # the system user Postgres runs as, when we are root


def _pg_program(name: str) -> str | None:
    """A Postgres program: on PATH, else in the newest /usr/lib/postgresql/*/bin (Debian's)."""
    found = shutil.which(name)
    if found:
        return found
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2])):
        candidate = Path(folder) / name
        if candidate.exists():
            found = str(candidate)
    return found


def _as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def missing() -> str | None:
    """Why the services cannot be started here, or None."""
    for program in ("initdb", "pg_ctl", "createdb", "dropdb"):
        if not _pg_program(program):
            return f"{program} not found (Postgres' server programs, e.g. apt-get install postgresql)"
    if not shutil.which("redis-server"):
        return "redis-server not found (apt-get install redis-server)"
    if _as_root():
        if not shutil.which("runuser"):
            return "running as root, and runuser (to run Postgres as another user) not found"
        try:
            import pwd

            pwd.getpwnam(PG_USER)
        except KeyError:
            return f"running as root, and no {PG_USER!r} system user to run Postgres as"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_pg_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", PG_USER, "--", *command] if _as_root() else command


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, check=False, capture_output=True, text=True, **kwargs)
    if result.returncode:
        raise RuntimeError(f"{' '.join(command)} exited {result.returncode}:\n{result.stdout}{result.stderr}")
    return result


def _wait_for_redis(port: int, process: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(64).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"redis-server did not answer on port {port} within {timeout}s")


def _redis_command(port: int, *words: str) -> bytes:
    command = f"*{len(words)}\r\n" + "".join(f"${len(w)}\r\n{w}\r\n" for w in words)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(command.encode())
        return s.recv(256)


def reset(env: dict[str, str]) -> None:
    """The database back to what the migrations left (a copy of the template start() made), and
    Redis emptied: a new Dify, in about a second instead of the migrations' half minute."""
    server = ["-h", env["DB_HOST"], "-p", env["DB_PORT"], "-U", env["DB_USERNAME"]]
    _run([_pg_program("dropdb"), *server, "--force", "--if-exists", env["DB_DATABASE"]])
    _run([_pg_program("createdb"), *server, "-T", TEMPLATE, env["DB_DATABASE"]])
    _redis_command(int(env["REDIS_PORT"]), "FLUSHALL")


class Services:
    """The running Postgres and Redis, the env that points a Dify process at them, and the
    seconds that setting them up (setup_seconds) and Dify's migrations (migration_seconds) took."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="llmprobe-dify-"))
        self.pg_data = self.root / "pg" / "data"
        self.pg_port = free_port()
        self.redis_port = free_port()
        self.redis: subprocess.Popen | None = None
        self.pg_started = False
        self.env: dict[str, str] = {}
        self.setup_seconds = 0.0
        self.migration_seconds = 0.0

    def start_postgres(self) -> None:
        pg = self.root / "pg"
        pg.mkdir()
        if _as_root():
            # The temporary folder is root's and private: let the postgres user through to its own.
            os.chmod(self.root, 0o711)
            shutil.chown(pg, user=PG_USER)
        _run(
            _as_pg_user(
                [_pg_program("initdb"), "-D", str(self.pg_data), "-U", "postgres", "--auth=trust"]
                + ["-E", "UTF8", "--no-locale", "--no-sync"]
            )
        )
        options = (
            f"-p {self.pg_port} -k {pg} -c listen_addresses=127.0.0.1"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        _run(
            _as_pg_user(
                [_pg_program("pg_ctl"), "-D", str(self.pg_data), "-l", str(pg / "log"), "-o", options]
                + ["-w", "-t", "60", "start"]
            )
        )
        self.pg_started = True
        _run(
            _as_pg_user(
                [_pg_program("createdb"), "-h", str(pg), "-p", str(self.pg_port), "-U", "postgres", DATABASE]
            )
        )

    def start_redis(self) -> None:
        folder = self.root / "redis"
        folder.mkdir()
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", ""]
            + ["--appendonly", "no", "--dir", str(folder)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for_redis(self.redis_port, self.redis)

    def dify_env(self) -> dict[str, str]:
        """What Dify's settings read, to use these services (and nothing else outside)."""
        redis = f"redis://127.0.0.1:{self.redis_port}"
        return {
            "SECRET_KEY": "llmprobe-test-secret-key",
            "DEPLOY_ENV": "DEVELOPMENT",
            "MIGRATION_ENABLED": "false",
            "DB_TYPE": "postgresql",
            "DB_HOST": "127.0.0.1",
            "DB_PORT": str(self.pg_port),
            "DB_USERNAME": "postgres",
            "DB_PASSWORD": "postgres",
            "DB_DATABASE": DATABASE,
            "REDIS_HOST": "127.0.0.1",
            "REDIS_PORT": str(self.redis_port),
            "REDIS_USERNAME": "",
            "REDIS_PASSWORD": "",
            "REDIS_DB": "0",
            "CELERY_BROKER_URL": f"{redis}/1",
            "CELERY_BACKEND": "redis",
            "STORAGE_TYPE": "opendal",
            "OPENDAL_SCHEME": "fs",
            "OPENDAL_FS_ROOT": str(self.root / "storage"),
            "CHECK_UPDATE_URL": "",
            "LOG_LEVEL": "WARNING",
        }

    def reset(self) -> None:
        reset(self.env)

    def stop(self) -> None:
        if self.redis is not None and self.redis.poll() is None:
            self.redis.terminate()
            try:
                self.redis.wait(10)
            except subprocess.TimeoutExpired:
                self.redis.kill()
                self.redis.wait()
        if self.pg_started:
            subprocess.run(
                _as_pg_user([_pg_program("pg_ctl"), "-D", str(self.pg_data), "-m", "immediate", "stop"]),
                check=False,
                capture_output=True,
            )
            self.pg_started = False
        shutil.rmtree(self.root, ignore_errors=True)


def flask_command(python: str) -> list[str]:
    """Flask's command line in the given Python (its `flask` script when it has one)."""
    script = Path(python).parent / "flask"
    return [str(script)] if script.exists() else [python, "-m", "flask"]


def migrate(api: str | Path, env: dict[str, str], python: str = sys.executable) -> float:
    """Dify's migrations, as its docker entrypoint runs them (`flask db upgrade`, and, in a tree that
    has a second migration folder `migrations_extend`, `flask extend_db upgrade`); their seconds."""
    environment = {**os.environ, **env, "PYTHONPATH": str(api), "FLASK_APP": "app.py"}
    commands = [["db", "upgrade"]]
    if (Path(api) / "migrations_extend").is_dir():
        commands.append(["extend_db", "upgrade"])
    began = time.monotonic()
    for command in commands:
        _run(flask_command(python) + command, cwd=str(api), env=environment, timeout=900)
    return time.monotonic() - began


def start(api: str | Path, python: str = sys.executable) -> Services:
    """Postgres and Redis started, Dify's migrations run on them; stop() ends both."""
    services = Services()
    try:
        began = time.monotonic()
        services.start_postgres()
        services.start_redis()
        services.env = services.dify_env()
        services.setup_seconds = time.monotonic() - began
        services.migration_seconds = migrate(api, services.env, python)
        server = ["-h", "127.0.0.1", "-p", str(services.pg_port), "-U", "postgres"]
        _run([_pg_program("createdb"), *server, "-T", DATABASE, TEMPLATE])
    except BaseException:
        services.stop()
        raise
    return services


def main(argv: list[str]) -> int:
    if not argv or argv[0].startswith("-"):
        print(USAGE, file=sys.stderr)
        return 2
    reason = missing()
    if reason:
        print(f"cannot start: {reason}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop() still runs
    api = Path(argv[0]).resolve()
    services = start(api)
    print(
        f"services: postgres :{services.pg_port}, redis :{services.redis_port}, set up in"
        f" {services.setup_seconds:.1f}s; migrations {services.migration_seconds:.1f}s",
        file=sys.stderr,
        flush=True,
    )
    try:
        if len(argv) == 1:
            for key, value in services.env.items():
                print(f"export {key}={shlex.quote(value)}", flush=True)
            print("(up until interrupted)", file=sys.stderr, flush=True)
            signal.pause()
            return 0
        environment = {**os.environ, **services.env, "PYTHONPATH": str(api)}
        began = time.monotonic()
        code = subprocess.run(argv[1:], check=False, cwd=str(api), env=environment).returncode
        print(f"command: exit {code} after {time.monotonic() - began:.1f}s", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        return 130
    finally:
        services.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
