"""``instrument CMD ARGS...``: run a command with llmprobe started in every Python process it runs.

It puts llmprobe's bootstrap folder first on PYTHONPATH (the user's PYTHONPATH follows) and
replaces itself with CMD (exec: same pid, same signals, same exit code). Python finds the
bootstrap's sitecustomize at start-up, which starts the agent and then runs the application's
own sitecustomize. Child Python processes inherit PYTHONPATH and are instrumented too.
"""

from __future__ import annotations

import errno
import os
import sys

# Imported for type checkers only: importing typing would cost every start-up milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn

BOOTSTRAP_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_bootstrap")

USAGE = """\
usage: instrument [--help] [--version] [--] CMD [ARGS...]

Run CMD with the llmprobe agent started in every Python process it runs
(python app.py, python -m pkg, gunicorn, uvicorn, flask run, their workers).

The main environment variables (the README lists them all; `llmprobe config`
prints the effective settings):
  OTEL_SERVICE_NAME                   service.name (default: the script or module name)
  OTEL_TRACES_EXPORTER                otlp | console | file | none
  OTEL_EXPORTER_OTLP_ENDPOINT         collector address, e.g. http://localhost:4318
  OTEL_EXPORTER_OTLP_PROTOCOL         http/protobuf (default) | grpc
  OTEL_EXPORTER_OTLP_HEADERS          headers such as auth tokens: k1=v1,k2=v2
  OTEL_RESOURCE_ATTRIBUTES            more resource attributes: k1=v1,k2=v2
  OTEL_TRACES_SAMPLER                 always_on, always_off, traceidratio, parentbased_*
  OTEL_TRACES_SAMPLER_ARG             the ratio for *traceidratio
  OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT
                                      true | false: record prompts and answers
  OTEL_INSTRUMENTATION_GENAI_MESSAGE_CONTENT_MAX_LENGTH
                                      characters kept per content value (default 4096)
  OTEL_PYTHON_DISABLED_INSTRUMENTATIONS
                                      instrumentations to leave off: openai,flask,...
  OTEL_SDK_DISABLED                   true: llmprobe does nothing
  APSARA_APM_APP_TYPE                 app | model | microservice (default: detected)
  LLMPROBE_SHUTDOWN_TIMEOUT           seconds to flush at exit (default 2)

Exit status: that of CMD; 127 if CMD is not found, 126 if it cannot be executed.
"""


def _version() -> str:
    from llmprobe._version import version

    return version()


def python_path(existing: str | None) -> str:
    """PYTHONPATH for CMD: the bootstrap folder first, then the user's entries in their order
    (without an earlier copy of the bootstrap folder, so nested `instrument` calls stay tidy)."""
    entries = [BOOTSTRAP_DIR]
    for entry in (existing or "").split(os.pathsep):
        if entry and os.path.abspath(entry) != BOOTSTRAP_DIR:
            entries.append(entry)
    return os.pathsep.join(entries)


def _fail(command: str, message: str, code: int) -> NoReturn:
    sys.stderr.write(f"instrument: {command}: {message}\n")
    sys.stderr.flush()
    raise SystemExit(code)


def _resolve(command: str) -> str:
    """The file exec will run, judged as a shell does: 127 not found, 126 not executable."""
    if os.sep in command or (os.altsep and os.altsep in command):
        if not os.path.exists(command):
            _fail(command, "No such file or directory", 127)
        if os.path.isdir(command):
            _fail(command, "Is a directory", 126)
        if not os.access(command, os.X_OK):
            _fail(command, "Permission denied", 126)
        return command
    not_executable = None
    for folder in os.environ.get("PATH", os.defpath).split(os.pathsep):
        candidate = os.path.join(folder or ".", command)
        if os.path.isfile(candidate):
            if os.access(candidate, os.X_OK):
                return candidate
            not_executable = not_executable or candidate
    if not_executable:
        _fail(command, "Permission denied", 126)
    _fail(command, "command not found", 127)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        sys.stderr.write(USAGE)
        return 2
    if args[0] in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return 0
    if args[0] == "--version":
        sys.stdout.write(f"instrument (llmprobe) {_version()}\n")
        return 0
    if args[0] == "--":
        args = args[1:]
        if not args:
            sys.stderr.write(USAGE)
            return 2
    command = args[0]
    path = _resolve(command)
    os.environ["PYTHONPATH"] = python_path(os.environ.get("PYTHONPATH"))
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execv(path, args)
    except OSError as exc:
        # Found and executable, yet exec refused: a bad interpreter line (as the shell, 126),
        # a binary for another machine.
        reason = exc.strerror or str(exc)
        if exc.errno == errno.ENOENT:
            reason = f"bad interpreter: {reason}"
        _fail(command, reason, 126)
    return 126  # not reached: exec replaced this process


if __name__ == "__main__":
    sys.exit(main())
