"""Commands that move items in and out: import a file, export a project (written safely).

Registered on ``labelwright`` by :mod:`labelwright.cli` (loaded when one of its commands runs).
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from pathlib import Path

import click
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from labelwright.cli_db import Ctx, console, out
from labelwright.cli_formats import EXPORT_FORMATS, export_other
from labelwright.errors import LabelwrightError
from labelwright.io import spans_import
from labelwright.io.forked import default_workers
from labelwright.io.readers import open_records
from labelwright.services.export import csv_chunks, format_for, jsonl_lines, write_parquet
from labelwright.services.items import chat_fields, import_items
from labelwright.services.projects import Project, get_project
from labelwright.store import Store

SPANS_FORMATS = {".conll": "conll", ".spacy": "spacy"}  # by extension; --format names them too
MAX_EXPORT_WORKERS = 4  # export --workers by default: the cores, at most this many (a chunk each; more add little)


@click.command("import")
@click.argument("project")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", default=None,
              type=click.Choice(["jsonl", "csv", "parquet", *SPANS_FORMATS.values()]),
              help="File format (default: from the file's extension; .conll and .spacy too). conll, spacy: "
                   "CoNLL-2003 BIO lines or a spaCy DocBin, each sentence or doc an item with its spans as "
                   "gold answers of the project's spans question.")
@click.option("--encoding", default=None, metavar="NAME",
              help="Text encoding of a JSONL or CSV file (default UTF-8), e.g. latin-1 or cp1252.")
@click.option("--question", default=None, metavar="NAME",
              help="conll, spacy: the spans question the spans answer (default: the project's only one).")
@click.pass_obj
def import_cmd(obj: Ctx, project, file, fmt, encoding, question):
    """Import items into PROJECT from a JSONL, CSV or Parquet FILE (all or nothing), or a spans question's
    gold spans from a CoNLL or spaCy DocBin FILE."""
    store = obj.store()
    p = get_project(store, project)
    spans_fmt = fmt or SPANS_FORMATS.get(Path(file).suffix.lower())
    if spans_fmt in SPANS_FORMATS.values():
        read = spans_import.import_conll if spans_fmt == "conll" else spans_import.import_docbin
        with console.status(f"importing {file}"):
            result = read(store, p, file, question)
    else:
        records, _size = open_records(file, fmt, json_columns=chat_fields(p), encoding=encoding)
        with Progress(TextColumn("importing"), BarColumn(), TextColumn("{task.completed:,} items"),
                      TimeElapsedColumn(), console=console, transient=True) as bar:
            task = bar.add_task("import", total=None)
            result = import_items(store, p, records, file=file,
                                  on_progress=lambda n: bar.update(task, completed=n))
    if result["received"] == 0:
        console.print(f"[yellow]warning:[/] {escape(file)} holds no items (it is empty, or only a header): nothing was "
                      "imported", highlight=False)
        return
    gold = f", {result['gold']:,} with gold answers" if result["gold"] else ""
    repeated = (f", {result['repeated']:,} repeated within the file (same content, kept once)"
                if result.get("repeated") else "")
    out.print(f"imported {result['inserted']:,} new items into {p.slug} "
              f"({result['duplicates']:,} already present{repeated}{gold})", highlight=False)


@click.command("export")
@click.argument("project")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "parquet", *EXPORT_FORMATS]), default=None,
              help="Output format (default: from the output file's extension, .jsonl/.json, .csv or .parquet; "
                   "a format that contradicts the extension is refused). labelstudio: Label Studio JSON (and "
                   "its labelling config beside it); dpo, sft: TRL preference and demonstration JSONL; hf: a "
                   "Hugging Face dataset folder (save_to_disk); conll, spacy: a spans question's spans as CoNLL-2003 "
                   "BIO lines or a spaCy DocBin; coco, yolo, voc: a boxes or polygons question's shapes as COCO "
                   "JSON or a folder of YOLO label files or Pascal VOC XML (image sizes read under the media_root "
                   "setting).")
@click.option("-o", "--output", default=None, type=click.Path(),
              help="Output file (a folder for hf, yolo, voc; - for standard output, jsonl, csv or parquet). "
                   "Default: in the current folder, named after the "
                   "project and format (SLUG.jsonl, SLUG.csv, SLUG.parquet, SLUG.json for labelstudio, "
                   "SLUG.conll, SLUG.spacy, SLUG-dpo.jsonl, SLUG-sft.jsonl, SLUG-coco.json, or the folder "
                   "SLUG-hf, SLUG-yolo, SLUG-voc).")
@click.option("--force", is_flag=True, help="Replace the output file if it exists.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Processes that make a jsonl, csv or parquet file's chunks side by side (default on Linux: the "
                   "machine's cores, at most 4; elsewhere 1: all in this process). The file is the same either way.")
@click.pass_obj
def export_cmd(obj: Ctx, project, fmt, output, force, workers):
    """Export PROJECT's items, annotations and majority votes (to a new file; --force replaces one; -o -
    writes jsonl, csv or parquet to standard output)."""
    if output == "-":
        return _export_to_stdout(obj, project, fmt or "jsonl", workers)
    if output is None:  # named after the project's slug (PROJECT may be given otherwise)
        output = default_output(get_project(obj.store(), project).slug, fmt)
    target = Path(output)
    if fmt in EXPORT_FORMATS:  # other tools' formats: see labelwright.cli_formats
        return export_other(obj, project, fmt, target, force, _write_new_file)
    fmt = format_for(target, fmt)
    _check_output(target, force)
    store = obj.store()
    p = get_project(store, project)

    n = workers or default_workers(MAX_EXPORT_WORKERS)
    with console.status(f"exporting {p.slug} as {fmt}"):
        _write_new_file(target, force, lambda f: write_flat(store, p, fmt, f, n))
    out.print(f"wrote {output} ({target.stat().st_size:,} bytes)", highlight=False, markup=False)


def write_flat(store: Store, p: Project, fmt: str, f, workers: int) -> None:
    """Write project ``p`` as jsonl, csv or parquet to the binary file ``f``, its chunks made by ``workers``
    processes."""
    if fmt == "parquet":
        write_parquet(store, p, f, workers=workers)
        return
    chunks = jsonl_lines(store, p, workers=workers) if fmt == "jsonl" else csv_chunks(store, p, workers=workers)
    for chunk in chunks:
        f.write(chunk)


class _WholeWrites(io.RawIOBase):
    """A file descriptor written whole: each write loops until every byte is out. (``sys.stdout.buffer``
    reports a short write and drops the rest when the reader goes away after part of a large write, so a
    truncated export would end with exit status 0; here the next write raises BrokenPipeError.)"""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self._fd = fd

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        while view:
            view = view[os.write(self._fd, view):]
        return len(data)


def _export_to_stdout(obj: Ctx, project, fmt: str, workers) -> None:
    """``export -o -``: the flat formats to standard output (the server streams large exports this way,
    see labelwright.io.spawned), nothing else printed there; a pipe closed early ends the command quietly."""
    if fmt not in ("jsonl", "csv", "parquet"):
        raise LabelwrightError(f"-o - (standard output) takes jsonl, csv or parquet; {fmt} is written to a file or "
                               "folder: give its name with -o")
    store = obj.store()
    p = get_project(store, project)
    sys.stdout.flush()
    try:
        write_flat(store, p, fmt, _WholeWrites(sys.stdout.fileno()), workers or default_workers(MAX_EXPORT_WORKERS))
    except BrokenPipeError:  # the reader stopped (| head, a client gone): not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's own flush at exit does not fail again
        sys.exit(1)


DEFAULT_NAMES = {"jsonl": "{}.jsonl", "csv": "{}.csv", "parquet": "{}.parquet", "labelstudio": "{}.json",
                 "conll": "{}.conll", "spacy": "{}.spacy", "dpo": "{}-dpo.jsonl", "sft": "{}-sft.jsonl",
                 "coco": "{}-coco.json", "hf": "{}-hf", "yolo": "{}-yolo", "voc": "{}-voc"}


def default_output(slug: str, fmt: str | None) -> str:
    """Where ``export`` writes without ``-o``: a file (or folder) in the current folder named after the
    project's slug and the format (JSONL when no format is given)."""
    return DEFAULT_NAMES[fmt or "jsonl"].format(slug)


def _check_output(target: Path, force: bool) -> None:
    folder = target.parent
    if not folder.is_dir():
        raise LabelwrightError(f"no folder {str(folder)!r} to write {target.name!r} in: create it first",
                               file=str(target))
    if os.path.lexists(target) and not force:
        raise LabelwrightError("the file exists: pass --force to replace it, or choose another name",
                               file=str(target))


def _write_new_file(target: Path, force: bool, write) -> None:
    """``write(binary_file)`` into a temporary file created afresh in ``target``'s folder (mkstemp: an
    exclusive create, so never an existing file or a link planted there), then rename it onto ``target``.
    Without ``force`` an existing ``target`` is never replaced. If anything fails the temporary file is
    removed and ``target`` is left as it was."""
    _check_output(target, force)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # the mode a plain new file gets (mkstemp makes it 0600)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if force:
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)  # fails if target appeared meanwhile: no overwrite without --force
            except FileExistsError:
                raise LabelwrightError("the file exists: pass --force to replace it, or choose another name",
                                       file=str(target)) from None
            except OSError:  # a file system without hard links
                _check_output(target, force)
                os.replace(tmp, target)
    finally:
        if os.path.lexists(tmp):
            os.remove(tmp)
