"""Readers for the standard benchmark layouts: PASCAL VOC 2012, COCO-Stuff164k, ADE20K.

Every reader turns its dataset's label convention into the one the metrics use: ids
``0 .. K-1`` and 255 for "not scored". Class names and the text queries for each class live in
``resources/classes/`` (one class per line; ``label`` or ``label: name1|name2``).

Errors name the file: a missing split file, a missing image or annotation, an image whose size
differs from its annotation's. A dataset folder is input from outside: an id list is read up to
:data:`MAX_LIST_BYTES` and a folder is listed up to :data:`MAX_FOLDER_ENTRIES` entries (more is
refused, never cut to a part that depends on the disk's order); each id must be one file name,
listed once, and every image and annotation (an entry that is a link included) must lie in its
folder; an image or annotation larger than the image loader's byte cap
(:func:`~ovpaint.core.image_io.image_byte_cap`) is refused from its size, one of another size
than its image from its header, both before anything is decoded.

Each dataset is one reader class plus one :class:`DatasetSpec` registered once
(:func:`register_dataset`): its aliases, the split it reads, the settings preset per method
and its key among published results. ``ovpaint benchmark --dataset``, the benchmark dialog,
the runner's presets and the report's references are generated from :data:`DATASETS`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ovpaint.core.errors import BadInput
from ovpaint.core.image_io import LoadedImage, load_image
from ovpaint.core.masks import load_label_png
from ovpaint.core.paths import resource
from ovpaint.core.prompt import ClassQuery
from ovpaint.core.safeio import list_names, read_regular, safe_name, under_root
from ovpaint.pipelines.segmentation.settings import THESIS_GRID, VOC_DENSE, VOC_NACLIP

IGNORE = 255
MAX_LIST_BYTES = 16 << 20  # an id list (VOC's val: 17 KB, trainaug: 127 KB); class lists too
MAX_FOLDER_ENTRIES = 200_000  # a listed images folder (COCO's train2017: 118,287 images)


@dataclass(frozen=True)
class DatasetClass:
    label: str  # the dataset's own name, shown in reports
    queries: tuple[str, ...]  # text queries; the class scores the best of them

    def query(self) -> ClassQuery:
        return ClassQuery(self.label, self.queries)


@dataclass(frozen=True)
class Sample:
    id: str
    image_path: Path
    label_path: Path


@dataclass
class LoadedSample:
    sample: Sample
    image: LoadedImage
    gt: np.ndarray  # H×W int32 in 0..K-1 or 255


def read_class_file(path: str | os.PathLike) -> list[DatasetClass]:
    """Parse a class list: one class per line, ``#`` comments, ``label[: q1|q2]``."""
    classes = []
    for line_no, raw in enumerate(_read_lines(Path(path), "The class list"), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        label, _, rest = line.partition(":")
        label = label.strip()
        queries = tuple(q.strip() for q in rest.split("|") if q.strip()) if rest else (label,)
        if not label or not queries:
            raise BadInput(f"{path}, line {line_no}: expected 'label' or 'label: name1|name2'.")
        classes.append(DatasetClass(label, queries))
    return classes


def _read_lines(path: Path, what: str) -> list[str]:
    """The lines of a text file of the dataset, bounded by :data:`MAX_LIST_BYTES`."""
    data = read_regular(path, MAX_LIST_BYTES, f"{what} {path}")
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise BadInput(f"{what} {path} is not UTF-8 text: {exc.reason}.") from None


def read_id_list(path: Path) -> list[str]:
    """The sample ids of a split file (the first word of each line): each one file name
    (no folder, no ``..``), listed once; bounded as :func:`_read_lines`."""
    ids: list[str] = []
    seen: dict[str, int] = {}
    for line_no, line in enumerate(_read_lines(path, "The split file"), start=1):
        words = line.split()
        if not words:
            continue
        where = f"{path.name}, line {line_no}"
        sid = words[0]
        if len(safe_name(sid, where).parts) != 1:
            raise BadInput(f"{where}: the id {sid[:80]!r} names a folder; ids are file names.")
        if sid in seen:
            raise BadInput(f"{where}: the id {sid} is listed twice (also line {seen[sid]}).")
        seen[sid] = line_no
        ids.append(sid)
    return ids


class Dataset:
    """A benchmark split: its classes, its samples, and how to read one sample."""

    key = ""
    title = ""
    class_file = ""
    num_classes = 0
    #: Dataset id of the class that stands for "none of the named classes", or None when
    #: the dataset has no such class (then an unlabelled prediction is a miss).
    background_id: int | None = None

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise BadInput(f"Dataset folder not found: {self.root}")
        self.classes = self._read_classes()
        if len(self.classes) != self.num_classes:
            raise BadInput(
                f"{self.class_file} lists {len(self.classes)} classes; "
                f"{self.title} has {self.num_classes}."
            )
        self.samples = self._list_samples()
        if not self.samples:
            raise BadInput(f"No images found for {self.title} under {self.root}.")

    # -- to implement per layout
    def _read_classes(self) -> list[DatasetClass]:
        """The class list: ``class_file`` among the resources' class lists by default."""
        return read_class_file(resource("classes", self.class_file))

    def _list_samples(self) -> list[Sample]:
        raise NotImplementedError

    def _convert_labels(self, raw: np.ndarray, sample: Sample) -> np.ndarray:
        return raw

    # -- shared
    @property
    def class_names(self) -> list[str]:
        return [c.label for c in self.classes]

    def class_queries(self) -> list[ClassQuery]:
        return [c.query() for c in self.classes]

    def load(self, sample: Sample) -> LoadedSample:
        image = load_image(sample.image_path)
        if not sample.label_path.exists():
            raise BadInput(
                f"Annotation missing for image {sample.image_path.name}: {sample.label_path}"
            )
        raw = load_label_png(
            sample.label_path,
            size=(image.width, image.height),
            what=f"Image and annotation sizes differ: {sample.image_path}",
        )
        gt = self._convert_labels(np.asarray(raw).astype(np.int32), sample)
        bad = (gt != IGNORE) & ((gt < 0) | (gt >= self.num_classes))
        if bad.any():
            value = int(gt[bad][0])
            raise BadInput(
                f"{sample.label_path} holds label {value}, outside the "
                f"{self.num_classes} classes of {self.title}."
            )
        return LoadedSample(sample, image, gt)

    def prediction_png_ids(self, ids: np.ndarray) -> np.ndarray:
        """Our 0..K-1/255 ids back into the dataset's own annotation values, for saving."""
        return ids


def _require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise BadInput(f"{what} folder not found: {path}")
    return path


def _first_existing(candidates: list[Path], marker: str) -> Path | None:
    for c in candidates:
        if (c / marker).exists():
            return c
    return None


def _pair_by_stem(images_dir: Path, labels_dir: Path, label_for) -> list[Sample]:
    """The images of ``images_dir`` in name order, each with its annotation; the folder is
    listed up to :data:`MAX_FOLDER_ENTRIES` entries."""
    samples = []
    for name in list_names(images_dir, MAX_FOLDER_ENTRIES, "The images folder"):
        entry = images_dir / name
        if entry.suffix.lower() not in (".jpg", ".jpeg", ".png") or name.startswith("."):
            continue
        img = under_root(images_dir, entry.name, f"The image {entry}")
        label = label_for(entry.stem)
        if label is None:
            raise BadInput(
                f"Annotation missing for image {entry}: "
                f"expected {labels_dir / (entry.stem + '.png')}"
            )
        samples.append(Sample(entry.stem, img, under_root(labels_dir, label.name, f"{label}")))
    return samples


class VOCDataset(Dataset):
    """PASCAL VOC 2012 segmentation val: ``JPEGImages``, ``SegmentationClass`` palette PNGs
    (index = class, 255 = object border / difficult, ignored), ``ImageSets/Segmentation``."""

    key = "voc"
    title = "PASCAL VOC 2012"
    class_file = "voc21.txt"
    num_classes = 21
    background_id = 0

    def __init__(self, root: str | os.PathLike, split: str = "val") -> None:
        self.split = split
        super().__init__(root)

    def _list_samples(self) -> list[Sample]:
        base = (
            _first_existing(
                [self.root, self.root / "VOC2012", self.root / "VOCdevkit" / "VOC2012"],
                "JPEGImages",
            )
            or self.root
        )
        self.base = base
        images = _require_dir(base / "JPEGImages", "VOC images (JPEGImages)")
        labels = _require_dir(base / "SegmentationClass", "VOC annotations (SegmentationClass)")
        split_file = base / "ImageSets" / "Segmentation" / f"{self.split}.txt"
        if not split_file.exists():
            raise BadInput(f"VOC split file missing: {split_file}")
        samples = []
        for sid in read_id_list(split_file):
            listed = f"Listed in {split_file.name}, {sid}"
            img = under_root(images, f"{sid}.jpg", listed)
            if not img.exists():
                raise BadInput(f"Image listed in {split_file.name} is missing: {images / sid}.jpg")
            lab = under_root(labels, f"{sid}.png", listed)
            if not lab.exists():
                raise BadInput(
                    f"Annotation listed in {split_file.name} is missing: {labels / sid}.png"
                )
            samples.append(Sample(sid, img, lab))
        return samples


class COCOStuffDataset(Dataset):
    """COCO-Stuff164k val: ``images/val2017/*.jpg`` and ``annotations/val2017``. Accepts the
    original stuffthingmaps PNGs (ids 0..181, mapped to 171 train ids; unused ids → 255) and
    mmseg's converted ``*_labelTrainIds.png`` (already train ids)."""

    key = "cocostuff"
    title = "COCO-Stuff164k"
    class_file = "cocostuff171.txt"
    num_classes = 171

    def __init__(self, root: str | os.PathLike, split: str = "val2017") -> None:
        self.split = split
        mapping = json.loads(resource("classes", "cocostuff182_to_171.json").read_text("utf-8"))
        unused = set(mapping["unused_ids"])
        self._lut = np.full(256, IGNORE, dtype=np.int32)
        used = [i for i in range(mapping["num_source_ids"]) if i not in unused]
        self._lut[used] = np.arange(len(used))
        self._to_source = np.full(256, IGNORE, dtype=np.int32)
        self._to_source[np.arange(len(used))] = used
        super().__init__(root)

    def _list_samples(self) -> list[Sample]:
        images = _require_dir(self.root / "images" / self.split, "COCO-Stuff images")
        labels = _require_dir(self.root / "annotations" / self.split, "COCO-Stuff annotations")

        def label_for(stem: str) -> Path | None:
            for name in (f"{stem}_labelTrainIds.png", f"{stem}.png"):
                if (labels / name).exists():
                    return labels / name
            return None

        return _pair_by_stem(images, labels, label_for)

    def _convert_labels(self, raw: np.ndarray, sample: Sample) -> np.ndarray:
        if sample.label_path.name.endswith("_labelTrainIds.png"):
            return raw
        if raw.size and (raw.min() < 0 or raw.max() > 255):
            raise BadInput(f"{sample.label_path} holds values outside 0..255.")
        return self._lut[raw]

    def prediction_png_ids(self, ids: np.ndarray) -> np.ndarray:
        """Back to the 182-id stuffthingmaps convention (255 stays 255)."""
        return self._to_source[np.clip(ids, 0, 255)]


class ADE20KDataset(Dataset):
    """ADE20K (ADEChallengeData2016) validation: ``images/validation/*.jpg`` and
    ``annotations/validation/*.png``; value 0 ("other") ignored, v ≥ 1 is class v − 1."""

    key = "ade20k"
    title = "ADE20K"
    class_file = "ade150.txt"
    num_classes = 150

    def __init__(self, root: str | os.PathLike, split: str = "validation") -> None:
        self.split = split
        super().__init__(root)

    def _list_samples(self) -> list[Sample]:
        base = _first_existing([self.root, self.root / "ADEChallengeData2016"], "images")
        base = base or self.root
        images = _require_dir(base / "images" / self.split, "ADE20K images")
        labels = _require_dir(base / "annotations" / self.split, "ADE20K annotations")

        def label_for(stem: str) -> Path | None:
            path = labels / f"{stem}.png"
            return path if path.exists() else None

        return _pair_by_stem(images, labels, label_for)

    def _convert_labels(self, raw: np.ndarray, sample: Sample) -> np.ndarray:
        out = raw - 1
        out[raw == 0] = IGNORE
        return out

    def prediction_png_ids(self, ids: np.ndarray) -> np.ndarray:
        """Back to ADE's values: class c is c + 1; unassigned (255) becomes 0."""
        out = ids + 1
        out[ids == IGNORE] = 0
        return out


# --------------------------------------------------------------------------- the registry
@dataclass(frozen=True)
class DatasetSpec:
    """A benchmark the product can score: its reader and everything the front-ends show.

    ``presets``: settings per method name (nested, as ``--set`` takes them), ``"*"`` for every
    method; a method's own entry is merged over ``"*"`` and the user's settings over both.
    ``report_key``: the dataset's key among published results (the report's references)."""

    reader: type[Dataset]
    split: str  # which split the reader reads, for people ("val", "val2017", ...)
    aliases: tuple[str, ...] = ()
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    report_key: str = ""

    @property
    def key(self) -> str:
        return self.reader.key

    @property
    def title(self) -> str:
        return self.reader.title

    @property
    def label(self) -> str:
        """Title and split, for lists: "PASCAL VOC 2012 (val)"."""
        return f"{self.title} ({self.split})"

    def preset(self, method: str) -> dict[str, dict[str, Any]]:
        """The settings this dataset's runs start from with ``method``."""
        from ovpaint.pipelines.segmentation.settings import merge_settings

        return merge_settings(self.presets.get("*"), self.presets.get(method))


DATASETS: dict[str, DatasetSpec] = {}


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Add a dataset; it appears in ``ovpaint benchmark`` and the benchmark dialog at once."""
    if not spec.key or not spec.title:
        raise ValueError(f"dataset reader {spec.reader.__name__} needs a key and a title")
    for name in (spec.key, *spec.aliases):
        owner = _owner_of(name)
        if owner is not None and owner != spec.key:
            raise ValueError(f"dataset name '{name}' is already taken by '{owner}'")
    DATASETS[spec.key] = spec
    return spec


def _owner_of(name: str) -> str | None:
    name = name.strip().lower()
    for spec in DATASETS.values():
        if name == spec.key or name in spec.aliases:
            return spec.key
    return None


def dataset_key(name: str) -> str:
    """The registered key for ``name`` or one of its aliases (any case)."""
    key = _owner_of(name)
    if key is None:
        raise BadInput(f"Unknown dataset '{name}'. Use one of: {', '.join(DATASETS)}.")
    return key


def dataset_spec(name: str) -> DatasetSpec:
    return DATASETS[dataset_key(name)]


def open_dataset(name: str, root: str | os.PathLike) -> Dataset:
    """Open a registered dataset by name or alias from its root folder."""
    return dataset_spec(name).reader(root)


#: The benchmark keeps the thesis's proposal grid on every device (the app and the CLI use a
#: cheaper one on a CPU): its numbers stay comparable with the thesis's.
THESIS_PROPOSALS = {"proposal": {"points_per_side": THESIS_GRID}}

#: The stuff datasets are scored at a larger short side (METHOD.md §1.6), SCLIP's defaults else.
STUFF_DENSE = {"logit_scale": 40.0, "prob_thd": 0.0, "area_thd": None, "short_side": 448}

register_dataset(
    DatasetSpec(
        VOCDataset,
        "val",
        aliases=("voc21", "voc2012", "pascal"),
        presets={"*": {"dense": dict(VOC_DENSE), "naclip": dict(VOC_NACLIP), **THESIS_PROPOSALS}},
        report_key="voc21",
    )
)
register_dataset(
    DatasetSpec(
        COCOStuffDataset,
        "val2017",
        aliases=("coco-stuff", "coco_stuff", "cocostuff164k", "coco"),
        presets={"*": {"dense": dict(STUFF_DENSE), **THESIS_PROPOSALS}},
        report_key="cocostuff",
    )
)
register_dataset(
    DatasetSpec(
        ADE20KDataset,
        "ADEChallengeData2016 validation",
        aliases=("ade", "ade150"),
        presets={"*": {"dense": dict(STUFF_DENSE), **THESIS_PROPOSALS}},
        report_key="ade20k",
    )
)
