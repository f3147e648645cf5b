"""Reading the small text files that pass between stages and from the user (JSON records and
indexes, YAML configurations): a file that is missing, is not of its format (an HTML page saved
under its name, a truncated copy) or is not the document it should be is an
:class:`InputDataError` naming the file and the problem, never a traceback from the parser or
from the first key looked up."""

from __future__ import annotations

import json
import os
from pathlib import Path

from farside_gan.core.errors import InputDataError


def _text(path: Path, what: str) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        raise InputDataError(path, "file does not exist", reason="missing_file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputDataError(path, f"cannot read {what} ({exc})", reason="corrupt_index") from exc


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= 60 else line[:60] + "..."


def read_json(path: str | os.PathLike, what: str, keys=(), kind: type = dict):
    """The JSON document of ``path``: a ``kind`` (dict or list) and, for a dict, holding every
    one of ``keys``; ``what`` names it in the error ("a fetch index")."""
    path = Path(path)
    text = _text(path, what)
    if not text.strip():
        raise InputDataError(path, f"is empty, not {what}", reason="corrupt_index")
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise InputDataError(path, f"is not JSON, so not {what} (it begins "
                             f"{_first_line(text)!r}; {exc})", reason="corrupt_index") from None
    return check_document(document, path, what, keys, kind)


def check_document(document, path, what: str, keys=(), kind: type = dict):
    """``document`` (parsed from ``path``) if it is a ``kind`` holding ``keys``, else the error."""
    if not isinstance(document, kind):
        raise InputDataError(path, f"holds a JSON {type(document).__name__}, not {what}",
                             reason="corrupt_index")
    missing = [k for k in keys if k not in document]
    if missing:
        raise InputDataError(path, f"is not {what}: it lacks {', '.join(map(repr, missing))}",
                             reason="corrupt_index")
    return document


def read_yaml_mapping(path: str | os.PathLike, what: str = "a configuration") -> dict:
    """The YAML mapping of ``path`` ({} for an empty file)."""
    import yaml

    path = Path(path)
    text = _text(path, what)
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        problem = " ".join(str(exc).split())
        raise InputDataError(path, f"is not YAML, so not {what} ({problem})",
                             reason="bad_config") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise InputDataError(path, f"holds a YAML {type(document).__name__} (it begins "
                             f"{_first_line(text)!r}), not {what} of keys and values",
                             reason="bad_config")
    return document


def mapping_section(document: dict, key: str, path) -> dict:
    """``document[key]``, a mapping of its own ({} when absent or empty)."""
    value = document.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputDataError(path, f"section {key}: holds a {type(value).__name__}, not keys "
                             "and values", reason="bad_config")
    return value
