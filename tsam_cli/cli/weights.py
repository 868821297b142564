"""``tsam weights ...``: list the known weight files and download them into the cache.

Mounted by the main CLI with ``app.add_typer(weights_cli.app, name="weights")``. Failures are
raised as :class:`tsam_cli.errors.WeightsError`; the main CLI turns them into one-line errors
and exit codes. No torch here.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from tsam_cli import weights

app = typer.Typer(
    help="Manage model weights: see what is cached, download what is missing.",
    no_args_is_help=True,
    add_completion=False,
)

_CHECKSUM_STYLE = {"ok": "green", "mismatch": "bold red", "unknown": "yellow", "missing": "dim"}


def _human_size(n: int | None) -> str:
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"  # not reached


@app.command("list")
def list_weights() -> None:
    """Show every known weight file (size, source, cached, checksum) and what --model auto picks here."""
    # a cache that cannot be used (TSAM_HOME a file, an unreadable folder) is the same one-line
    # error (exit 6) as for `download`, rather than a table of misleading "missing" rows
    table = Table(title="tsam weights", caption=Text(f"cache: {weights.checked_cache_dir()}"))
    table.add_column("Name", style="bold")
    table.add_column("Size", justify="right")
    table.add_column("Source")
    table.add_column("Cached")
    table.add_column("Checksum")
    table.add_column("Description", overflow="fold")
    for name in weights.REGISTRY:
        info = weights.status(name)
        size = info["size_on_disk"] if info["cached"] else info["expected_size"]
        if info["cached"]:
            cached = "yes"
        elif info["partial"]:
            cached = f"partial ({_human_size(info['partial'])})"  # type: ignore[arg-type]
        else:
            cached = "no"
        if name == weights.OFFICIAL and weights.converted_path().is_file():
            cached = "converted" if cached == "no" else f"{cached}, converted"
        state = str(info["checksum"])
        spec = weights.REGISTRY[name]
        table.add_row(
            name,
            _human_size(size),  # type: ignore[arg-type]
            spec.source.host,
            cached,
            Text(state, style=_CHECKSUM_STYLE.get(state, "")),  # Text: a state is never read as markup
            spec.description,
        )
    console = Console(soft_wrap=False)
    console.print(table)
    from tsam_cli.models import auto_pick

    pick, why = auto_pick()
    # plain text: a cache path may hold "[" "]", which must not be read as rich markup
    console.print(Text.assemble("--model auto (the default) uses here: ", (pick, "bold"), f" ({why})"), soft_wrap=True)


@app.command("download")
def download_weights(
    names: list[str] = typer.Argument(..., metavar="NAME...", help="Weights to fetch (see `tsam weights list`)."),
    force: bool = typer.Option(
        False, "--force", "-f",
        help="Download again, even over a cached file with a wrong checksum; it is replaced only once the new download is verified.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar; print only the final paths."),
) -> None:
    """Download weights into the cache (resumes partial downloads, verifies checksums).

    A file already in the cache is never deleted: one with a wrong checksum is refused (move it
    away, or --force). Prints the path of each file on stdout once it is in place.
    """
    # fail on a typo before any download; a name given twice is fetched once
    specs = [weights.get_spec(name) for name in dict.fromkeys(names)]
    if any(spec.source.kind != "local" for spec in specs):
        weights.checked_cache_dir()  # TSAM_HOME a file, an unreadable cache: one line before anything
    err = Console(stderr=True)
    for spec in specs:
        if quiet:
            path = weights.download(spec, force=force)
        else:
            with Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=err,
                transient=True,
            ) as bar:
                task = bar.add_task(spec.name, total=spec.size)

                def update(done: int, total: int | None, _task=task, _bar=bar) -> None:
                    _bar.update(_task, completed=done, total=total)

                path = weights.download(spec, force=force, progress=update)
            # download() only returns a file whose checksum matched, where one is known
            note = "checksum ok" if spec.sha256 else "no checksum published, not verified"
            err.print(f"{spec.name}: {note}")
        typer.echo(str(path))


@app.command("convert")
def convert_weights(
    src: Path = typer.Argument(..., help="The official TSAM checkpoint (.pth)."),
    output: Path = typer.Option(..., "-o", "--output", help="Where to write the safetensors file (.safetensors)."),
    clean: bool = typer.Option(False, "--clean", help="Store the clean TSAM behaviour instead of the official code's quirks."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output (never the source)."),
) -> None:
    """Convert the official checkpoint to tsam's safetensors format (loaded safely: no code runs).

    The output is checked before the checkpoint is read (exit 5: exists without --overwrite, is
    the source, not .safetensors, folder not writable), written to a hidden temporary beside it and
    swapped in; an error or a signal leaves nothing behind. A bad source is exit 6.
    """
    from tsam_cli.model.official import convert_official

    path = convert_official(src, output, official_quirks=not clean, overwrite=overwrite)
    typer.echo(str(path))
