"""``llmprobe``: the agent's command line. ``llmprobe --version``, ``llmprobe config``."""

from __future__ import annotations

import os
import sys

USAGE = """\
usage: llmprobe [--help] [--version] COMMAND

commands:
  config    print the effective settings read from the environment, and any warnings

To run an application with llmprobe: instrument python app.py (see instrument --help).
"""


def _config() -> int:
    from llmprobe import _core

    settings, warnings = _core.configure(dict(os.environ))
    width = max((len(key) for key in settings), default=0)
    for key in sorted(settings):
        print(f"{key:<{width}}  {_show(settings[key])}")
    for warning in warnings:
        print(f"llmprobe: warning: {warning}", file=sys.stderr)
    return 0


def _show(value: object) -> str:
    if value is None:
        return "(not set)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value) or "(none)"
    return str(value)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        (sys.stdout if args else sys.stderr).write(USAGE)
        return 0 if args else 2
    if args[0] == "--version":
        from llmprobe._version import version

        print(f"llmprobe {version()}")
        return 0
    if args[0] == "config":
        return _config()
    sys.stderr.write(f"llmprobe: unknown command {args[0]!r}\n\n{USAGE}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
