"""llmprobe's version, read once from the installed package's metadata."""

from __future__ import annotations

_FALLBACK = "0.1.0"
_version: str | None = None


def version() -> str:
    global _version
    if _version is None:
        try:
            from importlib.metadata import version as dist_version

            _version = dist_version("llmprobe")
        except Exception:  # noqa: BLE001 - not installed (a source tree): this source's version
            _version = _FALLBACK
    return _version
