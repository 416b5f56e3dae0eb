"""Commands for other tools' formats: import a Label Studio project, and the export formats that are not
flat files of labelwright's own (Label Studio JSON, TRL preference and demonstration sets, a saved
Hugging Face dataset).

``import-labelstudio`` is registered on ``labelwright`` by :mod:`labelwright.cli`; ``labelwright export``
(:mod:`labelwright.cli_items`) hands the formats of :data:`EXPORT_FORMATS` to :func:`export_other`, which
writes what :mod:`labelwright.services.export_formats` makes (the API downloads the same).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import click
import orjson
from rich.markup import escape

from labelwright.cli_db import Ctx, console, out
from labelwright.errors import LabelwrightError
from labelwright.io.detection_import import import_coco_gold
from labelwright.io.labelstudio import import_labelstudio
from labelwright.io.yolo_import import import_yolo_gold
from labelwright.services.export_formats import FOLDERS, labelstudio_files, single_file, write_folder
from labelwright.services.projects import get_project

EXPORT_FORMATS = ("labelstudio", "dpo", "sft", "hf", "conll", "spacy", "coco", "yolo", "voc")


@click.command("import-labelstudio")
@click.argument("export", type=click.Path(dir_okay=False))
@click.option("--config", "config", required=True, type=click.Path(dir_okay=False),
              help="The project's labelling config (XML), as Label Studio shows it under Settings > Labeling "
                   "Interface > Code.")
@click.option("--slug", default=None, help="The new project's slug (default: from the export's file name).")
@click.option("--name", default=None, help="The new project's name (default: the export's file name).")
@click.option("--json", "as_json", is_flag=True, help="Print the import report as JSON.")
@click.pass_obj
def import_labelstudio_cmd(obj: Ctx, export, config, slug, name, as_json):
    """Import a Label Studio project from its JSON EXPORT and its labelling config, as a new project (all or
    nothing): tasks, annotators, annotations, skips, ground truths (gold) and predictions (a machine
    annotator)."""
    store = obj.store(create=True)
    with console.status(f"importing {export}"):
        report = import_labelstudio(store, export, config, slug=slug, name=name)
    if as_json:
        out.print_json(orjson.dumps(report.to_dict()).decode())
        return
    out.print(f"created project {report.project}: {report.items:,} items, {report.annotations:,} annotations by "
              f"{len(report.people)} people ({len(report.new_people)} new), {report.skipped:,} skipped, "
              f"{report.gold:,} gold, {report.predictions:,} predictions "
              f"({', '.join(report.machines) or 'no machine annotator'})", highlight=False, markup=False)
    for u in report.unmapped:
        console.print(f"[yellow]not mapped:[/] <{escape(u['tag'])}> {escape(str(u['name']))}: {escape(u['reason'])}",
                      highlight=False)
    if report.unknown_controls:
        console.print(f"[yellow]warning:[/] results name controls the config does not have, kept raw: "
                      f"{escape(', '.join(report.unknown_controls))} (is this the project's current config?)",
                      highlight=False)
    if report.raw_results:
        console.print(f"{report.raw_results:,} results of controls not mapped were kept in the items' data "
                      "(labelstudio_results)", highlight=False)
    if report.predictions_without_results:
        console.print(f"[yellow]warning:[/] {report.predictions_without_results:,} predictions are bare ids in this "
                      "export and were not imported: export with predictions in full (an export snapshot)",
                      highlight=False)
    if report.new_people:
        console.print("new annotators have no password: send them a sign-in link (labelwright users link NAME)",
                      highlight=False)


@click.command("import-gold")
@click.argument("project")
@click.argument("source", type=click.Path(exists=True))
@click.option("--format", "fmt", type=click.Choice(["coco", "yolo"]), default=None,
              help="coco (a JSON file) or yolo (a folder of label files); default: yolo for a folder, else coco.")
@click.option("--question", default=None, help="The boxes or polygons question (default: the project's only one).")
@click.option("--match-field", default=None,
              help="coco: the item field COCO's file_name is matched against (default: the question's image field).")
@click.option("--json", "as_json", is_flag=True, help="Print what was imported as JSON.")
@click.pass_obj
def import_gold_cmd(obj: Ctx, project, source, fmt, question, match_field, as_json):
    """Record a COCO file's or a YOLO folder's boxes or polygons as gold answers of PROJECT's items (all or
    nothing; formats/coco-yolo-voc.md)."""
    store = obj.store()
    p = get_project(store, project)
    fmt = fmt or ("yolo" if Path(source).is_dir() else "coco")
    with console.status(f"importing {source}"):
        if fmt == "yolo":
            done = import_yolo_gold(store, p, source, obj.settings.media_root, question=question)
        else:
            done = import_coco_gold(store, p, source, question=question, match_field=match_field)
    if as_json:
        out.print_json(orjson.dumps({"question": done.question, "items": done.items, "shapes": done.shapes}).decode())
        return
    out.print(f"{done.items:,} items of {p.slug} are gold for {done.question} ({done.shapes:,} shapes)",
              highlight=False, markup=False)


def export_other(obj: Ctx, project: str, fmt: str, target: Path, force: bool,
                 write_new_file: Callable[[Path, bool, Callable], None]) -> None:
    """``labelwright export --format F`` for the formats of :data:`EXPORT_FORMATS`, made by
    :mod:`labelwright.services.export_formats` (which the API shares): ``write_new_file(target, force, write)``
    is the export command's safe writer (a temporary file renamed into place)."""
    store = obj.store()
    p = get_project(store, project)
    media_root = obj.settings.media_root
    if fmt in FOLDERS:  # hf, yolo, voc (labelwright.services.export_formats.write_folder)
        count = _save_folder(target, force, lambda folder: write_folder(store, p, fmt, media_root, folder))
        out.print(f"wrote the dataset folder {target} (datasets.load_from_disk reads it)" if fmt == "hf"
                  else f"wrote the folder {target} ({count:,} files)", highlight=False, markup=False)
        return
    notes: list[str] = []
    if fmt == "labelstudio":
        body, config, notes = labelstudio_files(store, p)
        config_path = target.with_name(target.stem + ".label_config.xml")
        write_new_file(config_path, force, lambda f: f.write(config.encode() + b"\n"))
        notes.append(f"the labelling config for it is in {config_path}")
    else:  # coco, conll, spacy, dpo, sft
        body = single_file(store, p, fmt, media_root)
    write_new_file(target, force, lambda f: f.write(body))
    out.print(f"wrote {target} ({target.stat().st_size:,} bytes)", highlight=False, markup=False)
    for n in notes:
        console.print(escape(n), highlight=False)


def _save_folder(target: Path, force: bool, save: Callable[[str], int]) -> int:
    """``save(folder)`` into a new folder beside ``target``, then renamed onto it (an existing one is replaced
    only with ``force``); returns what ``save`` returns."""
    if not target.parent.is_dir():
        raise LabelwrightError(f"no folder {str(target.parent)!r} to write {target.name!r} in: create it first",
                               file=str(target))
    if os.path.lexists(target) and not force:
        raise LabelwrightError("it exists: pass --force to replace it, or choose another name", file=str(target))
    tmp = tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        count = save(os.path.join(tmp, "dataset"))
        if os.path.lexists(target):
            shutil.rmtree(target) if target.is_dir() and not target.is_symlink() else os.remove(target)
        os.replace(os.path.join(tmp, "dataset"), target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return count
