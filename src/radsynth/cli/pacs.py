"""``radsynth pacs search|push|pull URL ...``: talk to a PACS over DICOMweb.

URL is the DICOMweb root (for Orthanc ``http://host:8042/dicom-web``). A PACS that does not
answer after the retries is a one-line error (exit code 1).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Search, push to and pull from a PACS over DICOMweb.", no_args_is_help=True)


@app.callback()
def _check_extra() -> None:
    from radsynth.extras import require_extra

    require_extra("serve", "radsynth pacs", modules=("dicomweb_client",))


UrlArg = Annotated[str, typer.Argument(help="DICOMweb root, e.g. http://localhost:8042/dicom-web.")]
Retries = Annotated[int, typer.Option("--retries", help="Extra attempts when the PACS does not answer.")]
Timeout = Annotated[float, typer.Option("--timeout", help="Seconds per HTTP request.")]
BATCH = 50  # instances per STOW-RS request: bounded memory and request size


@app.command()
def search(
    url: UrlArg,
    patient: Annotated[str | None, typer.Option("--patient", help="Patient ID (wildcards * ?).")] = None,
    modality: Annotated[str | None, typer.Option("--modality", help="Modality in study, e.g. CT.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the DICOM JSON of each study.")] = False,
    retries: Retries = 3,
    timeout: Timeout = 10.0,
) -> None:
    """List the studies a PACS holds (QIDO-RS)."""
    from radsynth.serve.dicomweb import PacsClient

    filters = {k: v for k, v in {"PatientID": patient, "ModalitiesInStudy": modality}.items() if v}
    studies = PacsClient(url, retries=retries, timeout=timeout).search_studies(**filters)
    if as_json:
        typer.echo(json.dumps(studies, indent=2))
        return
    table = Table(title=f"{url}: {len(studies)} stud{'y' if len(studies) == 1 else 'ies'}")
    for column in ("study UID", "patient ID", "patient name", "date", "modalities", "instances"):
        table.add_column(column, overflow="fold")
    for study in studies:
        table.add_row(
            *(
                _value(study, tag)
                for tag in ("0020000D", "00100020", "00100010", "00080020", "00080061", "00201208")
            )
        )
    Console().print(table)


@app.command()
def push(
    url: UrlArg,
    paths: Annotated[list[Path], typer.Argument(help="DICOM files or folders (walked recursively).")],
    retries: Retries = 3,
    timeout: Timeout = 10.0,
) -> None:
    """Store DICOM files in a PACS (STOW-RS). Files that are not DICOM are listed, not sent.

    Exit code 1 when the PACS refused any instance or no DICOM file was found.
    """
    import pydicom

    from radsynth.provenance.verify import iter_files
    from radsynth.serve.dicomweb import PacsClient

    client = PacsClient(url, retries=retries, timeout=timeout)
    console = Console(stderr=True)
    ready, skipped, stored, failures = [], 0, 0, []
    for path in iter_files(paths):
        try:
            ready.append(pydicom.dcmread(path))
        except Exception as err:  # pydicom raises several types for a file that is not DICOM
            skipped += 1
            console.print(f"[yellow]not DICOM, skipped:[/] {path} ({type(err).__name__})", highlight=False)
            continue
        if len(ready) == BATCH:
            stored, failures = _send(client, ready, stored, failures)
            ready = []
    stored, failures = _send(client, ready, stored, failures)
    for failure in failures:
        console.print(f"[red]refused:[/] {failure['sop_uid']} (FailureReason 0x{failure['reason']:04X})")
    typer.echo(f"stored {stored} instance(s) in {url}; {len(failures)} refused; {skipped} not DICOM")
    if failures or stored == 0:
        raise typer.Exit(1)


def _send(client: Any, datasets: list[Any], stored: int, failures: list) -> tuple[int, list]:
    if not datasets:
        return stored, failures
    result = client.store(datasets)
    return stored + result["stored"], failures + result["failures"]


@app.command()
def pull(
    url: UrlArg,
    study_uid: Annotated[str, typer.Argument(help="Study Instance UID to retrieve.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Folder for <SOPInstanceUID>.dcm files.")],
    retries: Retries = 3,
    timeout: Timeout = 10.0,
) -> None:
    """Retrieve one study from a PACS (WADO-RS) into a folder."""
    from radsynth.serve.dicomweb import PacsClient

    files = PacsClient(url, retries=retries, timeout=timeout).download_study(study_uid, out)
    typer.echo(f"wrote {len(files)} instance(s) of study {study_uid} to {out}")


def _value(study: dict[str, Any], tag: str) -> str:
    values = study.get(tag, {}).get("Value", [])
    return "\\".join(str(v.get("Alphabetic", "")) if isinstance(v, dict) else str(v) for v in values)
