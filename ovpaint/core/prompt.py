"""Parsing of the user's class prompt: "sky, dog, person in red | man in red".

Commas, semicolons and new lines separate classes; ``|`` separates synonyms of one class
(the class scores the best of its names). Names are trimmed, whitespace folded, duplicates
dropped (case-insensitively), over-long input refused with a clear message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ovpaint.core.errors import BadInput

MAX_CLASSES = 200
MAX_NAME_CHARS = 200  # CLIP's 77-token context holds about this much text
_CLASS_SEP = re.compile(r"[,;\n]+")


@dataclass(frozen=True)
class ClassQuery:
    name: str  # display name: the first synonym
    synonyms: tuple[str, ...]


def parse_prompt(text: str | None) -> list[ClassQuery]:
    if text is None or not text.strip():
        raise BadInput("The prompt is empty: type one or more classes, e.g. 'sky, dog'.")
    classes: list[ClassQuery] = []
    seen: set[str] = set()
    for chunk in _CLASS_SEP.split(text):
        names = []
        for raw in chunk.split("|"):
            name = " ".join(raw.split())
            if not name:
                continue
            if len(name) > MAX_NAME_CHARS:
                raise BadInput(
                    f"A class name is {len(name)} characters long; the limit is {MAX_NAME_CHARS}."
                    " Separate classes with commas."
                )
            if name.lower() not in {n.lower() for n in names}:
                names.append(name)
        if not names:
            continue
        key = names[0].lower()
        if key in seen:
            continue
        seen.add(key)
        classes.append(ClassQuery(names[0], tuple(names)))
    if not classes:
        raise BadInput("The prompt has no class names, only separators. Example: 'sky, dog'.")
    if len(classes) > MAX_CLASSES:
        raise BadInput(f"{len(classes)} classes given; at most {MAX_CLASSES} are supported.")
    return classes


def parse_class_name(text: str, what: str = "--class") -> str:
    """One class name given on its own (the class clicks correct, the name of a clicked
    object): whitespace folded as in a prompt; separators, control characters (a name is one
    line of the class file) and over-long names refused."""
    if any(ch in ",;|" or not (ch.isprintable() or ch == " ") for ch in text):
        raise BadInput(
            f"{what} must be one class name, without ',', ';', '|', line breaks or "
            "control characters."
        )
    name = " ".join(text.split())
    if not name:
        raise BadInput(f"{what} is empty: give a class name.")
    if len(name) > MAX_NAME_CHARS:
        raise BadInput(f"{what} is {len(name)} characters long; the limit is {MAX_NAME_CHARS}.")
    return name
