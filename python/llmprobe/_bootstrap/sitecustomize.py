"""llmprobe's start-up inside every Python process run under ``instrument``.

``instrument`` puts this folder first on PYTHONPATH, so Python's site module imports this file
as ``sitecustomize`` before the application's code. It starts the agent, then runs the
sitecustomize the application would have had without llmprobe (the next one on sys.path), so
that one still runs, under its own name. Nothing here may stop the application: a failure is
one line on stderr.
"""

import os
import sys


def _start_agent():
    try:
        from llmprobe import _agent

        _agent.start()
    except Exception as exc:  # noqa: BLE001
        sys.stderr.write(
            f"llmprobe: warning: the agent did not start ({type(exc).__name__}: {exc}); "
            "the application runs without it\n"
        )


def _run_next_sitecustomize():
    here = os.path.normcase(os.path.dirname(os.path.abspath(__file__)))
    path = [p for p in sys.path if os.path.normcase(os.path.abspath(p or os.curdir)) != here]
    from importlib.machinery import PathFinder

    spec = PathFinder.find_spec("sitecustomize", path)
    if spec is None or spec.loader is None:
        return
    from importlib.util import module_from_spec  # only now: it imports contextlib, warnings, ...

    module = module_from_spec(spec)
    # The application's module is "sitecustomize" from now on, as it would have been.
    sys.modules["sitecustomize"] = module
    # Its exceptions propagate to site, which reports them as it would have without llmprobe.
    spec.loader.exec_module(module)


_start_agent()
_run_next_sitecustomize()
