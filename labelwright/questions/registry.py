"""The question types a project schema may use, by their ``type`` tag.

Built-in types and plugins join the same way: each is an entry point of the group
``labelwright.question_types`` whose name is the type's tag and whose object is a
:class:`~labelwright.questions.base.QuestionType` subclass. The built-ins are listed in :data:`BUILTINS`
(and loaded through the same :func:`load` as an installed package's entry points); a plugin declares its
own in its ``pyproject.toml``::

    [project.entry-points."labelwright.question_types"]
    yes_no = "my_package.yes_no:YesNo"

The registry is filled the first time it is asked (:func:`question_types`), never at import. A program can
also :func:`register` a type itself (a test, a notebook); the project schema model is rebuilt so that the
new tag validates.
"""

from __future__ import annotations

import threading
import typing
from collections.abc import Callable, Mapping
from importlib.metadata import EntryPoint, entry_points
from pathlib import PurePosixPath
from typing import Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

from labelwright.questions.base import QuestionType

GROUP = "labelwright.question_types"
#: what a type's own files (QuestionType.assets) may be, with the media type they are served as
ASSET_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}

#: the built-in types, in the order the schema's error messages list them
BUILTINS: tuple[tuple[str, str], ...] = (
    ("single_choice", "labelwright.questions.choice:SingleChoice"),
    ("multiple_choice", "labelwright.questions.choice:MultipleChoice"),
    ("rating", "labelwright.questions.rating:Rating"),
    ("pairwise", "labelwright.questions.pairwise:Pairwise"),
    ("ranking", "labelwright.questions.ranking:Ranking"),
    ("text", "labelwright.questions.text:FreeText"),
    ("code", "labelwright.questions.code:CodeTask"),
    ("spans", "labelwright.questions.spans:Spans"),
    ("boxes", "labelwright.questions.boxes:Boxes"),
    ("polygons", "labelwright.questions.polygons:Polygons"),
    ("chat", "labelwright.questions.chat:Chat"),
)


class QuestionTypeError(Exception):
    """A question type that cannot join the registry: not a QuestionType, a tag taken, a missing template."""


_types: dict[str, type[QuestionType]] = {}
_lock = threading.RLock()
_loaded = False
_loading = False  # the first load is under way on the thread holding _lock
_dirty = False  # a type was registered during it
_listeners: list[Callable[[], None]] = []


def type_tag(cls: type) -> str:
    """A question type's tag: the one value of its ``type: Literal[...]`` field."""
    if not (isinstance(cls, type) and issubclass(cls, QuestionType)) or cls is QuestionType:
        raise QuestionTypeError(f"{cls!r} is not a subclass of labelwright.questions.QuestionType")
    annotation = cls.model_fields["type"].annotation
    args = typing.get_args(annotation) if typing.get_origin(annotation) is typing.Literal else ()
    if len(args) != 1 or not isinstance(args[0], str):
        raise QuestionTypeError(f"{cls.__module__}.{cls.__qualname__}: declare its tag as "
                                "type: Literal['your_type'] (one string)")
    return args[0]


def register(cls: type[QuestionType], *, replace: bool = False) -> type[QuestionType]:
    """Add a question type (usable as a class decorator). A tag already taken by another class is an
    error unless ``replace``."""
    global _dirty
    _ensure_loaded()
    _add(cls, replace=replace)
    if _loading:
        _dirty = True
    else:
        _changed()
    return cls


def unregister(tag: str) -> None:
    """Remove a type (a test's plugin, when the test is done). Built-ins stay."""
    if tag in dict(BUILTINS):
        raise QuestionTypeError(f"{tag!r} is a built-in question type")
    if _types.pop(tag, None) is not None:
        _changed()


def reload() -> None:
    """Forget every type and load the built-ins and the installed plugins again (a package installed into
    a running program); types added with :func:`register` are dropped."""
    global _loaded
    with _lock:
        _types.clear()
        _loaded = False
        _ensure_loaded()
    _changed()


def on_change(listener: Callable[[], None]) -> None:
    """Call ``listener`` whenever a type joins or leaves after the first load (the schema rebuilds)."""
    _listeners.append(listener)


def question_types() -> Mapping[str, type[QuestionType]]:
    """Every registered type by tag: the built-ins, then the installed plugins, then registered ones."""
    _ensure_loaded()
    return dict(_types)


def get(tag: str) -> type[QuestionType]:
    _ensure_loaded()
    try:
        return _types[tag]
    except KeyError:
        raise QuestionTypeError(f"no question type {tag!r}; known: {sorted(_types)}") from None


def load(ep: EntryPoint) -> type[QuestionType]:
    """The question type an entry point names, checked; errors name the entry point."""
    try:
        cls = ep.load()
    except Exception as e:  # an import error in a plugin: say which
        raise QuestionTypeError(f"question type entry point {ep.name} = {ep.value!r} cannot be loaded: "
                                f"{type(e).__name__}: {e}") from e
    tag = type_tag(cls)
    if tag != ep.name:
        raise QuestionTypeError(f"question type entry point {ep.name} = {ep.value!r}: the class's tag is "
                                f"{tag!r}; name the entry point {tag!r}")
    return cls


def _add(cls: type[QuestionType], *, replace: bool = False) -> None:
    tag = type_tag(cls)
    old = _types.get(tag)
    if old is not None and old is not cls and not replace:
        raise QuestionTypeError(f"question type {tag!r} is already registered by "
                                f"{old.__module__}.{old.__qualname__}")
    if not cls.template or not cls.template_path().is_file():
        raise QuestionTypeError(f"{cls.__module__}.{cls.__qualname__}: its form partial "
                                f"{str(cls.template_path())!r} is missing (set template to a file next to "
                                "the module)")
    for name in cls.assets:
        parts = PurePosixPath(name).parts
        if PurePosixPath(name).is_absolute() or ".." in parts or PurePosixPath(name).suffix not in ASSET_TYPES:
            raise QuestionTypeError(f"{cls.__module__}.{cls.__qualname__}: asset {name!r} must be a .js or .css "
                                    "file in or below the module's folder")
        path = cls.asset_path(name)
        if path is None or not path.is_file():
            raise QuestionTypeError(f"{cls.__module__}.{cls.__qualname__}: its asset {str(path)!r} is missing")
    _types[tag] = cls


def _ensure_loaded() -> None:
    """Load the built-ins and the installed plugins once. Other threads wait for the first load; a plugin
    module that registers more types while it is imported (on this thread) goes on without waiting."""
    global _loaded, _loading, _dirty
    if _loaded:
        return
    with _lock:
        if _loaded or _loading:
            return
        _loading, _dirty = True, False
        try:
            for name, value in BUILTINS:
                _add(load(EntryPoint(name, value, GROUP)))
            builtin = dict(BUILTINS)
            for ep in entry_points(group=GROUP):
                if builtin.get(ep.name) == ep.value:
                    continue  # the package's own declaration of a built-in
                _add(load(ep))
            _loaded = True
        except Exception:
            _types.clear()
            raise
        finally:
            _loading = False
    if _dirty:  # something registered during the load may have been validated against a partial list
        _changed()


def _changed() -> None:
    for listener in _listeners:
        listener()


class AnyQuestion:
    """The pydantic annotation of a schema's questions: one of the registered types, by its ``type`` tag
    (``questions: list[Annotated[QuestionType, AnyQuestion()]]``)."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        choices: dict[Any, core_schema.CoreSchema] = {
            tag: handler.generate_schema(cls) for tag, cls in question_types().items()}
        return core_schema.tagged_union_schema(choices, discriminator="type")
