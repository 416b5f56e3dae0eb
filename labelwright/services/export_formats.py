"""Every export format as one downloadable file, for the API and the project page (and the pieces the CLI
writes to disk): the flat formats of :mod:`labelwright.services.export` and other tools' formats, written
by the writers in :mod:`labelwright.io`.

* :data:`FORMATS` is the catalogue: each format's name, what reads it, the file it downloads as and the
  question it needs; :func:`formats_for` lists those that apply to a project (by its question types) and
  :func:`check_applies` refuses one that does not, naming the format and what it needs.
* :func:`single_file` (coco, conll, spacy, dpo, sft), :func:`labelstudio_files` and :func:`write_folder`
  (yolo, voc, hf) make the export; ``labelwright export`` writes them to the path it was given.
* :func:`export_file` makes a non-flat format a file to download: a single file as it is, Label Studio's
  tasks JSON and labelling config as a zip (with ``NOTES.txt`` saying what the format could not hold), a
  folder format as a zip of the folder written into a temporary directory. The zip is spooled to a
  temporary file, not held in memory.
"""

from __future__ import annotations

import importlib.util
import io
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import orjson

from labelwright.errors import ValidationError
from labelwright.io import coco, conll, hf, spacy_docbin, trl, voc, yolo
from labelwright.io.labelstudio import export_tasks
from labelwright.schema import ProjectSchema
from labelwright.services.projects import Project
from labelwright.store import Store

CHUNK = 1 << 20


def _has(*types: str) -> Callable[[ProjectSchema], bool]:
    return lambda schema: any(q.type in types for q in schema.questions)


def _always(_schema: ProjectSchema) -> bool:
    return True


@dataclass(frozen=True)
class ExportFormat:
    """One export format: ``name`` (the API's ``format=``), ``title`` and ``reader`` (what reads it, for
    people), ``file_name`` (``{}``: the project's slug), ``media_type``, ``needs`` (the question it needs,
    in words; empty when any project has it) and ``applies`` (whether a schema has it)."""

    name: str
    title: str
    reader: str
    file_name: str
    media_type: str
    needs: str = ""
    applies: Callable[[ProjectSchema], bool] = _always
    extra: str = ""  # the optional extra whose library writes it (``pip install 'labelwright[extra]'``)
    module: str = ""  # and that library's module

    @property
    def installed(self) -> bool:
        """Whether the library that writes it is installed here (formats without one always are)."""
        return not self.module or importlib.util.find_spec(self.module) is not None


ZIP = "application/zip"
NDJSON = "application/x-ndjson"
_BOXES = "a boxes or polygons question"
FORMATS: dict[str, ExportFormat] = {f.name: f for f in (
    ExportFormat("jsonl", "JSON Lines", "an item a line: pandas, jq", "{}.jsonl", NDJSON),
    ExportFormat("csv", "CSV", "an annotation a row: spreadsheets, pandas", "{}.csv", "text/csv"),
    ExportFormat("parquet", "Parquet", "an annotation a row: pandas, pyarrow, DuckDB", "{}.parquet",
                 "application/vnd.apache.parquet"),
    ExportFormat("labelstudio", "Label Studio", "tasks JSON and label_config.xml (zip)", "{}-labelstudio.zip", ZIP),
    ExportFormat("hf", "Hugging Face dataset", "datasets.load_from_disk, folder (zip)", "{}-hf.zip", ZIP,
                 extra="hf", module="datasets"),
    ExportFormat("coco", "COCO", "pycocotools, detection trainers", "{}-coco.json", "application/json",
                 _BOXES, _has("boxes", "polygons")),
    ExportFormat("yolo", "YOLO", "Ultralytics label files, folder (zip)", "{}-yolo.zip", ZIP,
                 _BOXES, _has("boxes", "polygons")),
    ExportFormat("voc", "Pascal VOC", "XML per image, torchvision VOCDetection, folder (zip)", "{}-voc.zip", ZIP,
                 _BOXES, _has("boxes", "polygons")),
    ExportFormat("conll", "CoNLL-2003", "BIO lines, spacy convert", "{}.conll", "text/plain; charset=utf-8",
                 "a spans question", _has("spans")),
    ExportFormat("spacy", "spaCy DocBin", "spacy train", "{}.spacy", "application/octet-stream",
                 "a spans question", _has("spans"), extra="spacy", module="spacy"),
    ExportFormat("dpo", "TRL preference (DPO)", "DPOTrainer, RewardTrainer: JSONL", "{}-dpo.jsonl", NDJSON,
                 "a pairwise or chat question", _has("pairwise", "chat")),
    ExportFormat("sft", "TRL demonstrations (SFT)", "SFTTrainer: JSONL", "{}-sft.jsonl", NDJSON,
                 "a free-text or chat question", _has("text", "chat")),
)}
FLAT = ("jsonl", "csv", "parquet")  # streamed by labelwright.services.export
FOLDERS = ("hf", "yolo", "voc")


def formats_for(project: Project) -> list[ExportFormat]:
    """The formats that apply to the project, in :data:`FORMATS` order."""
    return [f for f in FORMATS.values() if f.applies(project.schema)]


def check_applies(project: Project, fmt: str) -> ExportFormat:
    """The format, or an error naming it and what it needs (an unknown one: the formats there are)."""
    f = FORMATS.get(fmt)
    if f is None:
        raise ValidationError(f"no export format {fmt!r}; the formats: {', '.join(FORMATS)}", field="format")
    if not f.applies(project.schema):
        kinds = sorted({q.type for q in project.schema.questions})
        raise ValidationError(f"the {fmt} export ({f.title}) needs {f.needs}; the project {project.slug!r} has "
                              f"none (its question types: {', '.join(kinds) or 'none'})", field="format")
    return f


def single_file(store: Store, project: Project, fmt: str, media_root: Path | None) -> bytes:
    """The bytes of a single-file format: coco, conll, spacy, dpo or sft."""
    if fmt == "coco":  # a boxes question's boxes (labelwright.io.coco)
        return orjson.dumps(coco.coco_dataset(store, project, media_root), option=orjson.OPT_INDENT_2)
    if fmt == "conll":  # a spans question's aggregated spans (labelwright.io.conll, spacy_docbin)
        return conll.conll_export(store, project).to_bytes()
    if fmt == "spacy":
        return spacy_docbin.doc_bin(store, project).to_bytes()
    if fmt == "dpo":
        return trl.to_jsonl(trl.preference_rows(store, project))
    if fmt == "sft":
        return trl.to_jsonl(trl.demonstration_rows(store, project))
    raise ValueError(f"not a single-file format: {fmt!r}")


def labelstudio_files(store: Store, project: Project) -> tuple[bytes, str, list[str]]:
    """``(tasks JSON, labelling config XML, notes)``: what Label Studio imports (see
    :func:`labelwright.io.labelstudio.export_tasks`)."""
    tasks, config, notes = export_tasks(store, project)
    return orjson.dumps(tasks, option=orjson.OPT_INDENT_2), config, notes


def write_folder(store: Store, project: Project, fmt: str, media_root: Path | None, folder: str | Path) -> int:
    """Write a folder format (hf, yolo, voc) into ``folder`` (created); returns the number of files (yolo,
    voc) or of rows (hf)."""
    if fmt == "hf":
        hf.quiet()
        return hf.save_dataset(store, project, folder)
    if fmt in ("yolo", "voc"):  # a boxes question's boxes, a file per image (labelwright.io.yolo, voc)
        files = (yolo.yolo_dataset if fmt == "yolo" else voc.voc_dataset)(store, project, media_root)
        return yolo.write_files(files, folder)
    raise ValueError(f"not a folder format: {fmt!r}")


@dataclass
class ExportFile:
    """An export to download: ``file`` (binary, at its start; :meth:`chunks` reads and closes it), its
    ``name``, ``media_type``, ``size`` in bytes and ``notes`` (what the format could not hold)."""

    name: str
    media_type: str
    file: BinaryIO
    size: int
    notes: list[str] = field(default_factory=list)

    def chunks(self) -> Iterator[bytes]:
        with self.file:
            while block := self.file.read(CHUNK):
                yield block


def export_file(store: Store, project: Project, fmt: str, media_root: Path | None) -> ExportFile:
    """A format other than the flat ones (:data:`FLAT`) as one file to download (see the module's
    docstring); a format the project has no question for is refused by :func:`check_applies`."""
    f = check_applies(project, fmt)
    if fmt in FLAT:
        raise ValueError(f"{fmt} is streamed by labelwright.services.export")
    name = f.file_name.format(project.slug)
    if fmt == "labelstudio":
        tasks, config, notes = labelstudio_files(store, project)
        members: dict[str, bytes | Path] = {f"{project.slug}.json": tasks,
                                            f"{project.slug}.label_config.xml": config.encode() + b"\n"}
        if notes:  # what Label Studio's format could not hold, as the CLI prints it
            members["NOTES.txt"] = "".join(f"{n}\n" for n in notes).encode()
        spool = _zipped(members)
        return ExportFile(name, f.media_type, spool, _size(spool), notes)
    if fmt in FOLDERS:
        with tempfile.TemporaryDirectory(prefix="labelwright-export-") as tmp:
            top = name.removesuffix(".zip")
            write_folder(store, project, fmt, media_root, os.path.join(tmp, top))
            spool = _zipped({path.relative_to(tmp).as_posix(): path for path in sorted(Path(tmp, top).rglob("*"))
                             if path.is_file()})
        return ExportFile(name, f.media_type, spool, _size(spool))
    body = single_file(store, project, fmt, media_root)
    return ExportFile(name, f.media_type, io.BytesIO(body), len(body))


def _zipped(members: dict[str, bytes | Path]) -> BinaryIO:
    """A temporary file, at its start, holding a zip of ``members`` (``{name in the zip: bytes or a file
    read from disk}``)."""
    spool = tempfile.TemporaryFile()
    try:
        with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_DEFLATED) as z:
            for name, member in members.items():
                if isinstance(member, Path):
                    z.write(member, name)
                else:
                    z.writestr(name, member)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool


def _size(file: BinaryIO) -> int:
    size = file.seek(0, os.SEEK_END)
    file.seek(0)
    return size
