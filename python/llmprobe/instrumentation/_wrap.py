"""Patching helpers shared by every instrumentation: wrap and unwrap by dotted path, and guarded hooks.

The rule they enforce: llmprobe's own code around a user's call (the hooks) may fail, and is
then logged once and skipped; the user's call itself runs exactly once, unguarded, and its
result or exception reaches the caller untouched.

    def before(instance, args, kwargs):       # returns a state for the other hooks (a span, say)
        ...
    def after(state, result): ...             # return value ignored
    def error(state, exc): ...                # the exception is re-raised as it was

    wrap(openai.resources.chat.completions, "Completions.create",
         hooks("openai chat", before, after, error), owner="openai")
    ...
    unwrap_all("openai")
"""

from __future__ import annotations

from typing import Any, Callable

import wrapt

from llmprobe import _log

Before = Callable[[Any, tuple, dict], Any]
After = Callable[[Any, Any], None]
OnError = Callable[[Any, BaseException], None]

# (id(parent), attribute) -> (owner, parent, attribute, original attribute value or _INHERITED)
_originals: dict[tuple[int, str], tuple[str, Any, str, Any]] = {}
# The wrapped attribute was inherited by the class it was wrapped on: unwrap deletes the wrapper.
_INHERITED = object()


def wrap(target: Any, name: str, wrapper: Callable, owner: str = "") -> bool:
    """Wrap `target`'s attribute at dotted path `name` (``"Class.method"``) with a wrapt wrapper
    ``wrapper(wrapped, instance, args, kwargs)``, keeping the original for unwrap().

    `target` is a module, a class, or a module name. Wrapping the same attribute twice is
    ignored (False), so applying an instrumentation twice never stacks its hooks.
    """
    parent, attribute, original = wrapt.resolve_path(target, name)
    key = (id(parent), attribute)
    if key in _originals:
        return False
    if isinstance(parent, type) and attribute not in vars(parent):
        original = _INHERITED
    wrapt.wrap_function_wrapper(parent, attribute, wrapper)
    _originals[key] = (owner, parent, attribute, original)
    return True


def replace(target: Any, name: str, make: Callable[[Any], Callable], owner: str = "") -> bool:
    """Replace `target`'s attribute `name` (a function) with the plain function ``make(original)``,
    keeping the original for unwrap(): for a hot function called where a wrapt wrapper's own cost
    (about four times a plain function's call) would show. The replacement carries the original
    as ``__wrapped__``. Replacing the same attribute twice is ignored (False)."""
    parent, attribute, original = wrapt.resolve_path(target, name)
    key = (id(parent), attribute)
    if key in _originals:
        return False
    replacement = make(original)
    replacement.__wrapped__ = original
    setattr(parent, attribute, replacement)
    _originals[key] = (owner, parent, attribute, original)
    return True


def unwrap(target: Any, name: str) -> bool:
    """Put back the original that wrap() replaced; False when it was not wrapped by wrap()."""
    parent, attribute, _current = wrapt.resolve_path(target, name)
    entry = _originals.pop((id(parent), attribute), None)
    if entry is None:
        return False
    _restore(parent, attribute, entry[3])
    return True


def unwrap_all(owner: str) -> None:
    """Put back every original that wrap() replaced for `owner`."""
    for key, (entry_owner, parent, attribute, original) in list(_originals.items()):
        if entry_owner == owner:
            _restore(parent, attribute, original)
            del _originals[key]


def _restore(parent: Any, attribute: str, original: Any) -> None:
    if original is _INHERITED:
        delattr(parent, attribute)
    else:
        setattr(parent, attribute, original)


def guarded(key: str, fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """fn(*args, **kwargs) for llmprobe's own code: an exception is logged once under `key`
    and None returned instead."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001
        _log.log_once(key, exc)
        return None


def hooks(key: str, before: Before, after: After | None = None, error: OnError | None = None):
    """A wrapt wrapper running `before`, the wrapped call, then `after` or `error`.

    If `before` fails, the call runs without the other hooks. The wrapped call is never inside
    a try that could swallow, retry or replace its outcome.
    """

    def wrapper(wrapped, instance, args, kwargs):
        try:
            state = before(instance, args, kwargs)
        except Exception as exc:  # noqa: BLE001
            _log.log_once(key, exc)
            return wrapped(*args, **kwargs)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            if error is not None:
                guarded(key, error, state, exc)
            raise
        if after is not None:
            guarded(key, after, state, result)
        return result

    return wrapper


def async_hooks(key: str, before: Before, after: After | None = None, error: OnError | None = None):
    """hooks() for coroutine functions: `after` sees the awaited result."""

    async def wrapper(wrapped, instance, args, kwargs):
        try:
            state = before(instance, args, kwargs)
        except Exception as exc:  # noqa: BLE001
            _log.log_once(key, exc)
            return await wrapped(*args, **kwargs)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            if error is not None:
                guarded(key, error, state, exc)
            raise
        if after is not None:
            guarded(key, after, state, result)
        return result

    return wrapper
