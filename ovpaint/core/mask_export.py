"""The one on-disk layout of exported masks, written by the CLI, batch and the app alike.

A set of masks of one image has a base path ``<folder>/<base>`` (the image's stem) and
consists of

- ``<base>.labels.png``: the label map, an 8-bit palette PNG, value i = class i;
- ``<base>.classes.txt``: one line per class, ``<index><TAB><name>``, index 0 = background,
  the names exactly as given (a name's file part may have lost characters);
- ``<base>.mask-<NN>-<name>.png``: one binary mask per class (255 = the class), NN = its
  index in the class file.

Every file is written atomically; a set is written whole or not at all (a failure removes the
files of this call), and no file of the set may be one of the ``inputs``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from ovpaint.core.errors import BadInput
from ovpaint.core.fileio import atomic_write_text, check_output_file, file_id, file_ids
from ovpaint.core.masks import file_part, save_label_png, save_mask_png

LABELS_SUFFIX = ".labels.png"
CLASSES_SUFFIX = ".classes.txt"

#: (class index ≥ 1, mask H×W bool)
IndexedMask = tuple[int, np.ndarray]


def base_of(labels_path: str | os.PathLike) -> Path:
    """The base path of a label map's set: ``dir/photo.labels.png`` and ``dir/photo.png``
    both give ``dir/photo``."""
    path = Path(labels_path)
    name = path.name
    for suffix in (LABELS_SUFFIX, ".png"):
        if name.lower().endswith(suffix):
            return path.with_name(name[: -len(suffix)])
    return path


def labels_path(base: Path) -> Path:
    return base.with_name(base.name + LABELS_SUFFIX)


def classes_path(base: Path) -> Path:
    return base.with_name(base.name + CLASSES_SUFFIX)


def mask_path(base: Path, index: int, name: str) -> Path:
    return base.with_name(f"{base.name}.mask-{index:02d}-{file_part(name)}.png")


def classes_text(classes: Sequence[str]) -> str:
    return "".join(f"{i}\t{' '.join(str(n).split())}\n" for i, n in enumerate(classes))


def write_mask_set(
    base: str | os.PathLike,
    classes: Sequence[str],
    *,
    labels: np.ndarray | None = None,
    masks: Iterable[IndexedMask] | None = None,
    masks_base: str | os.PathLike | None = None,
    labels_file: str | os.PathLike | None = None,
    skip_empty: bool = False,
    inputs: Iterable[str | os.PathLike] = (),
    check: Callable[[], None] | None = None,
) -> list[Path]:
    """Write the set of ``classes`` (``classes[0]`` the background) at ``base``.

    ``labels``: the label map (written with the class file); ``masks``: (index, mask) pairs,
    by default ``labels == i`` for every class i ≥ 1 (``skip_empty``: only classes present).
    ``masks_base`` puts the mask files under another base (a separate masks folder);
    ``labels_file`` writes the label map under a name the user chose instead of
    ``<base>.labels.png``. ``check()`` runs before each file (a cancel check); anything it
    raises removes what this call wrote. Returns the written paths.
    """
    base = Path(base)
    classes = [str(c) for c in classes]
    if len(classes) > 256:
        raise BadInput("More than 255 classes do not fit a palette PNG.")
    if masks is None:
        if labels is None:
            raise ValueError("give labels, masks or both")
        masks = ((i, labels == i) for i in range(1, len(classes)))
    planned = _plan(base, classes, labels, masks, masks_base, labels_file, skip_empty)
    _refuse_inputs([path for path, _ in planned], inputs)
    written: list[Path] = []
    try:
        for path, write in planned:
            if check is not None:
                check()
            write(path)
            written.append(path)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return written


def _plan(base, classes, labels, masks, masks_base, labels_file, skip_empty):
    """(path, writer) of every file of the set, masks last."""
    mask_base = Path(masks_base) if masks_base is not None else base
    planned: list[tuple[Path, Callable[[Path], object]]] = []
    if labels is not None:
        target = Path(labels_file) if labels_file is not None else labels_path(base)
        planned.append((target, lambda p: save_label_png(p, labels)))
    planned.append((classes_path(base), lambda p: atomic_write_text(p, classes_text(classes))))
    for index, mask in masks:
        if not 1 <= index < len(classes):
            raise ValueError(f"mask index {index} is not a class of {len(classes)}")
        if skip_empty and not np.any(mask):
            continue
        planned.append(
            (mask_path(mask_base, index, classes[index]), lambda p, m=mask: save_mask_png(p, m))
        )
    return planned


def _refuse_inputs(targets: list[Path], inputs: Iterable[str | os.PathLike]) -> None:
    inputs = list(inputs)
    protected = {Path(p).resolve() for p in inputs if Path(p).exists()}
    identities = file_ids(inputs)  # the same file under another name: a link, a hard link
    for target in targets:
        if target.resolve() in protected or file_id(target) in identities:
            raise BadInput(
                f"{target} is an input file; choose another output (originals are never "
                "overwritten)."
            )


def mask_set_paths(
    base: str | os.PathLike,
    classes: Sequence[str],
    *,
    with_labels: bool = True,
    with_masks: bool = True,
    masks_base: str | os.PathLike | None = None,
    labels_file: str | os.PathLike | None = None,
) -> list[Path]:
    """Every file :func:`write_mask_set` may write for these arguments (each class's mask,
    also one ``skip_empty`` would leave out), to check them before the work."""
    base = Path(base)
    mask_base = Path(masks_base) if masks_base is not None else base
    paths = []
    if with_labels:
        paths.append(Path(labels_file) if labels_file is not None else labels_path(base))
    paths.append(classes_path(base))
    if with_masks:
        paths += [mask_path(mask_base, i, str(c)) for i, c in enumerate(classes) if i > 0]
    return paths


def check_mask_set(
    paths: Sequence[Path], *, inputs: Iterable[str | os.PathLike] = (), what: str = ""
) -> None:
    """Before any work: the set's files are distinct, none is an input, each can be written
    (see :func:`ovpaint.core.fileio.check_output_file`)."""
    seen: dict[Path, Path] = {}
    probed: set[Path] = set()  # the set's files share their folder: probe it once
    inputs = list(inputs)
    for path in paths:
        key = Path(os.path.abspath(path))
        if key in seen:
            raise BadInput(f"{what + ' ' if what else ''}{path} would be written twice in one set.")
        seen[key] = path
        check_output_file(path, what=what, inputs=inputs, probed=probed)
