"""The command line: parses arguments, calls ``digest.pipeline``, prints the result.

No logic lives here. Errors are one line on stderr (``error: ...``) with the error's exit code;
``--verbose`` adds the traceback. ``asyncio.run`` is called here and nowhere else. Each
module registers its commands on the app of ``_app``.

A command loads only its own module: ``main`` looks up the command named on the command line
in ``COMMANDS`` and imports that module alone, so typer builds (and Python imports) one
command's worth of code. Help, no command or an unknown name load every module, and so does
reading ``digest.cli.app`` (the whole app, as tests and tools see it).
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import typer

# Each command or group of the app with the module under digest/cli/ that registers it on the
# app; add new ones here.
COMMANDS: dict[str, str] = {
    "init": "init",
    "check": "check",
    "fetch": "ingest",
    "preview": "preview",
    "send": "send",
    "status": "send",
    "serve": "serve",
    "articles": "ingest",
    "subscribers": "subscribers",
    "archive": "archive",
    "bounces": "bounces",
    "editions": "editions",
    "feeds": "ingest",
    "lists": "lists",
    "sections": "sections",
}


def _load(modules: list[str]) -> typer.Typer:
    for module in modules:
        importlib.import_module(f"digest.cli.{module}")
    from digest.cli._app import app

    return app


def _every_module() -> list[str]:
    # `init` first, then by name: the order of registration is the order of `digest --help`.
    return ["init", *sorted(set(COMMANDS.values()) - {"init"})]


def _modules_for(args: list[str]) -> list[str]:
    """The modules `digest ARGS` needs: the named command's, else (help, a typo) all.

    The app's own options are flags, so the first word not starting with "-" is the command.
    """
    name = next((arg for arg in args if not arg.startswith("-")), None)
    if name in COMMANDS and "--help" not in args[: args.index(name)]:
        return [COMMANDS[name]]
    return _every_module()


def __getattr__(name: str) -> Any:
    if name == "app":
        return _load(_every_module())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    _load(_modules_for(sys.argv[1:]))()


__all__ = ["COMMANDS", "app", "main"]
