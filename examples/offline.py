"""What the example services share to run offline: the tests' fake OpenAI-compatible server in the
same process, and a demo that serves the app in a thread, makes a few requests and stops."""

from __future__ import annotations

import os
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any


def start_fake_openai() -> None:
    """The tests' fake OpenAI-compatible server (tests/openai/fake_openai.py), in this process;
    OPENAI_BASE_URL points at it."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "openai"))
    from fake_openai import FakeOpenAI

    server = FakeOpenAI().start()
    os.environ["OPENAI_BASE_URL"] = server.base_url
    os.environ.setdefault("OPENAI_API_KEY", "sk-offline-demo")
    print(f"offline: answers come from the fake OpenAI server at {server.base_url}", file=sys.stderr)


def demo(app: Any, port: int, paths: tuple[str, ...]) -> None:
    """Serve `app` in a thread, GET each of `paths` and print the answer, stop."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    for path in paths:
        with urllib.request.urlopen(base + path, timeout=30) as response:
            print(path, "->", response.read().decode())
    server.should_exit = True
    thread.join(10)
