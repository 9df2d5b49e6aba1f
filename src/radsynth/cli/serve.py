"""``radsynth serve``: the REST API, web page and PACS gate; ``radsynth token``: API tokens."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from radsynth.errors import InvalidInput

DATA_DIR = Path("radsynth-data")
DataDir = Annotated[
    Path, typer.Option("--data-dir", help="Where the service keeps its database, jobs and quarantine.")
]
token_app = typer.Typer(help="API tokens of a service's data folder (stored hashed; shown once).")


def serve(
    host: Annotated[
        str, typer.Option("--host", help="Interface to listen on (loopback by default).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
    data_dir: DataDir = DATA_DIR,
    pacs: Annotated[
        str | None,
        typer.Option("--pacs", help="DICOMweb root of the PACS (e.g. http://127.0.0.1:8042/dicom-web)."),
    ] = None,
    gate_policy: Annotated[
        str,
        typer.Option("--gate-policy", help="Synthetic studies at the gate: quarantine, or forward-tagged."),
    ] = "quarantine",
    gate_suspect: Annotated[
        str,
        typer.Option(
            "--gate-suspect",
            help="Studies only the detector suspects (not proof): forward-noted (Image Comments"
            " say so, logged), quarantine, or forward (logged only).",
        ),
    ] = "forward-noted",
    workers: Annotated[int, typer.Option("--workers", help="Job threads.")] = 1,
    no_detector: Annotated[
        bool, typer.Option("--no-detector", help="verify and the gate use marking + watermark only.")
    ] = False,
    device: Annotated[
        str | None, typer.Option("--device", help="cpu or cuda (default: cuda when present).")
    ] = None,
    max_upload_mb: Annotated[float, typer.Option("--max-upload-mb", help="Largest request body.")] = 256.0,
    data_root: Annotated[
        list[Path] | None,
        typer.Option("--data-root", help="A folder of manifests evaluation jobs may read (repeatable)."),
    ] = None,
    jobs_per_token: Annotated[
        int, typer.Option("--jobs-per-token", help="Queued + running jobs per token before 429.")
    ] = 4,
) -> None:
    """Serve the API (/api, /openapi.json), the web page (/) and the PACS gate (/gate/studies).

    Jobs survive restarts (SQLite in --data-dir). On the first start an admin token is made
    and printed once; make more with ``radsynth token create``.
    """
    from dataclasses import replace

    from radsynth.extras import require_extra

    require_extra("serve", "radsynth serve")
    import uvicorn

    from radsynth.serve.app import create_app
    from radsynth.serve.settings import Limits, ServeSettings
    from radsynth.serve.store import Store

    try:
        settings = ServeSettings(
            data_dir=data_dir,
            limits=replace(Limits(), max_upload_mb=max_upload_mb, jobs_per_token=jobs_per_token),
            workers=workers,
            pacs=pacs,
            gate_policy=gate_policy,
            gate_suspect_policy=gate_suspect,
            detector=not no_detector,
            device=device,
            data_roots=tuple(data_root or ()),
        )
    except ValueError as err:
        raise InvalidInput(str(err)) from None
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.database)
    if not store.tokens():
        made, secret = store.create_token("admin", ["admin"])
        Console(stderr=True).print(f"[bold]first start:[/] admin token (shown once): [bold green]{secret}[/]")
    store.close()
    console = Console(stderr=True)
    console.print(f"radsynth serve: http://{host}:{port}/ (data {settings.data_dir}, PACS {pacs or 'none'})")
    if host not in ("127.0.0.1", "localhost", "::1"):
        console.print(
            "[yellow]warning:[/] listening beyond loopback over plain HTTP: tokens and images cross the "
            "network unencrypted; put a TLS reverse proxy in front"
        )
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")


@token_app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="Who or what uses the token.")],
    scopes: Annotated[str, typer.Option("--scopes", help="Comma-separated: generate, verify, admin, study.")],
    data_dir: DataDir = DATA_DIR,
) -> None:
    """Make a token; its secret is printed once and stored only as a hash."""
    from radsynth.serve.store import Store

    store = Store(data_dir / "radsynth.db")
    try:
        made, secret = store.create_token(name, [s.strip() for s in scopes.split(",") if s.strip()])
    except ValueError as err:
        raise InvalidInput(str(err)) from None
    finally:
        store.close()
    Console(stderr=True).print(f"token {made.id} ({name}: {', '.join(made.scopes)}), shown once:")
    typer.echo(secret)


@token_app.command("list")
def list_tokens(data_dir: DataDir = DATA_DIR) -> None:
    """The tokens that are not revoked (never their secrets)."""
    from rich.table import Table

    from radsynth.serve.store import Store

    store = Store(data_dir / "radsynth.db")
    table = Table("id", "name", "scopes", "created")
    for t in store.tokens():
        table.add_row(t.id, t.name, ", ".join(t.scopes), t.created)
    store.close()
    Console().print(table)


@token_app.command("revoke")
def revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id (radsynth token list).")],
    data_dir: DataDir = DATA_DIR,
) -> None:
    """Revoke a token: it stops working at once and its queued jobs are cancelled (running
    ones stop at their next progress report)."""
    from radsynth.serve.store import Store
    from radsynth.serve.uploads import discard_inputs

    store = Store(data_dir / "radsynth.db")
    try:
        cancelled = store.revoke_token(token_id)
        if cancelled is None:
            raise InvalidInput(f"no token {token_id!r} in {data_dir}")
    finally:
        store.close()
    for job_id in cancelled:
        discard_inputs(data_dir / "jobs" / job_id)
    Console().print(f"revoked {token_id}; {len(cancelled)} queued job(s) cancelled")
