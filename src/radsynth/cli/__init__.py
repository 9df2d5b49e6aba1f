"""The ``radsynth`` command: a thin typer layer over the library.

Every command parses, validates, calls one library function and prints with rich. Heavy
imports (torch, SimpleITK, ...) happen inside commands so ``radsynth --help`` is instant.
Errors a user can act on (``RadsynthError``) are caught here once and printed as one line.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

from radsynth.cli import audit as audit_commands
from radsynth.cli import bench as bench_commands
from radsynth.cli import data as data_commands
from radsynth.cli import detect as detect_commands
from radsynth.cli import evaluate as evaluate_commands
from radsynth.cli import evaluate_translation
from radsynth.cli import generate as generate_commands
from radsynth.cli import handout as handout_commands
from radsynth.cli import models as models_commands
from radsynth.cli import pacs as pacs_commands
from radsynth.cli import serve as serve_commands
from radsynth.cli import study as study_commands
from radsynth.cli import train as train_commands
from radsynth.cli import translate as translate_commands
from radsynth.cli import verify as verify_commands
from radsynth.errors import RadsynthError

app = typer.Typer(
    name="radsynth",
    help="Synthetic medical images: generate, translate, evaluate, and mark them as synthetic.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(data_commands.app, name="data")
app.add_typer(audit_commands.app, name="audit")
app.add_typer(detect_commands.app, name="detect")
app.add_typer(pacs_commands.app, name="pacs")
evaluate_commands.app.command(name="translation")(evaluate_translation.translation)
app.add_typer(evaluate_commands.app, name="evaluate")
app.command(name="train")(train_commands.train)
app.command(name="generate")(generate_commands.generate)
app.add_typer(models_commands.app, name="models")
app.command(name="handout")(handout_commands.handout)
app.command(name="bench")(bench_commands.bench)
app.command(name="verify")(verify_commands.verify)
app.command(name="translate")(translate_commands.translate)
app.command(name="serve")(serve_commands.serve)
app.add_typer(serve_commands.token_app, name="token")
app.add_typer(study_commands.app, name="study")

err_console = Console(stderr=True)


def _print_version(value: bool) -> None:
    if value:
        from radsynth import __version__

        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Synthetic medical images: generate, translate, evaluate, and mark them as synthetic."""


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (usage errors are typer's; ours are one line)."""
    try:
        app(args=argv, prog_name="radsynth")
    except RadsynthError as err:
        err_console.print(f"[bold red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True)
        return 1
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    return 0


def run() -> None:
    """Console-script wrapper: exit with ``main``'s code."""
    sys.exit(main())


if __name__ == "__main__":
    run()
