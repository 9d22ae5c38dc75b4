"""Text embeddings of class names, averaged over prompt templates and cached (METHOD.md §1.5).

Encoding one name with the 80 OpenAI ImageNet templates runs the text transformer 80 times,
seconds on a CPU, so embeddings are kept in memory and on disk, keyed by the model (its id and
a fingerprint of its text weights), the template set and the name.

Speed: CLIP's text transformer is causal, so the output at the end-of-text token does not
depend on the padding after it. The transformer therefore runs only up to the longest prompt's
token length (typically ~15 of the 77 positions), which gives the same numbers as the padded
77-token run (``tests/pipelines/test_text.py`` checks it).
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ovpaint.core.errors import BadInput
from ovpaint.core.fileio import atomic_write_bytes
from ovpaint.core.jobs import Progress
from ovpaint.models.clip_loader import ClipBundle
from ovpaint.models.protocols import Models
from ovpaint.pipelines.segmentation.settings import check_templates

#: The four templates of the proposal path (the thesis found 4 better than 20 there). All four
#: are among the 80 OpenAI ImageNet templates: the plain photo, and the quality and size
#: variations that suit crops of objects at any scale.
FOUR_TEMPLATES: tuple[str, ...] = (
    "a photo of a {}.",
    "a bad photo of the {}.",
    "a photo of the large {}.",
    "a photo of the small {}.",
)

BATCH_PROMPTS = 640  # prompts per transformer call (8 names × 80 templates)
BUCKET_PROMPTS = 32  # prompts per length bucket when truncating


def template_set(templates: Sequence[str] | str) -> tuple[str, tuple[str, ...]]:
    """(key, templates) for a named set ("openai80", "four") or an explicit list of
    format strings with one ``{}``."""
    if isinstance(templates, str):
        if templates == "openai80":
            from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

            return "openai80", tuple(t("{}") for t in OPENAI_IMAGENET_TEMPLATES)
        if templates == "four":
            return "four", FOUR_TEMPLATES
        templates = [templates]
    items = tuple(str(t) for t in templates)
    if not items:
        raise BadInput("Every prompt template needs one '{}' where the class name goes.")
    for item in items:
        check_templates(item, "A prompt template", named=False)
    digest = hashlib.blake2b("\n".join(items).encode(), digest_size=8).hexdigest()
    return f"custom-{digest}", items


def _text_fingerprint(model: Any) -> str:
    """A short hash of the text tower's output weights: a cache key that changes when the
    weights do, even under the same model id (the tiny test models differ by seed)."""
    digest = hashlib.blake2b(digest_size=8)
    for name in ("text_projection", "positional_embedding"):
        tensor = getattr(model, name, None)
        if isinstance(tensor, torch.nn.Linear):
            tensor = tensor.weight
        if tensor is not None:
            digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    ln = getattr(model, "ln_final", None)
    if ln is not None and getattr(ln, "weight", None) is not None:
        digest.update(ln.weight.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _supports_truncation(model: Any) -> bool:
    return (
        all(
            hasattr(model, a)
            for a in (
                "token_embedding",
                "positional_embedding",
                "transformer",
                "ln_final",
                "text_projection",
            )
        )
        and getattr(model, "text_pool_type", "argmax") == "argmax"
        and getattr(model, "attn_mask", None) is not None
    )


@torch.inference_mode()
def encode_tokens(model: Any, tokens: torch.Tensor, truncate: bool = True) -> torch.Tensor:
    """Unnormalised text features (N×D) of token ids (N×77), as ``model.encode_text``.

    With ``truncate`` the causal transformer runs only up to the longest sequence's
    end-of-text token (the largest id in each row, as open_clip's argmax pooling assumes).
    """
    if not truncate or not _supports_truncation(model):
        return model.encode_text(tokens)
    eot = tokens.argmax(dim=-1)
    length = int(eot.max().item()) + 1
    tokens = tokens[:, :length]
    cast = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens).to(cast)
    x = x + model.positional_embedding[:length].to(cast)
    x = model.transformer(x, attn_mask=model.attn_mask[:length, :length])
    x = model.ln_final(x)
    x = x[torch.arange(x.shape[0], device=x.device), eot]
    proj = model.text_projection
    return proj(x) if isinstance(proj, torch.nn.Linear) else x @ proj


class TextEncoder:
    """Template-averaged, L2-normalised CLIP text embeddings with memory and disk caches.

    ``clip`` is a :class:`ovpaint.models.clip_loader.ClipBundle`. ``acquire`` (optional) is a
    context manager factory yielding the bundle placed and locked (``lambda: manager.use("clip")``);
    it is entered only when a name is not cached, so cached lookups never wait for the model.
    """

    def __init__(
        self,
        clip: ClipBundle,
        templates: Sequence[str] | str = "openai80",
        cache_dir: Path | None = None,
        *,
        acquire: Callable[[], AbstractContextManager] | None = None,
    ) -> None:
        self.template_key, self.templates = template_set(templates)
        self.model_id = str(clip.model_id)
        self.fingerprint = _text_fingerprint(clip.model)
        self._acquire = acquire or (lambda: nullcontext(clip))
        if cache_dir is None:
            from ovpaint.core.paths import cache_dir as user_cache_dir

            cache_dir = user_cache_dir() / "text"
        safe_id = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.model_id)
        self.cache_dir = Path(cache_dir) / f"{safe_id}-{self.fingerprint}" / self.template_key
        self._memory: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        self.disk_cache = True

    # ------------------------------------------------------------------ caches
    def _path(self, name: str) -> Path:
        digest = hashlib.blake2b(name.encode("utf-8"), digest_size=16).hexdigest()
        return self.cache_dir / f"{digest}.npy"

    def _from_disk(self, name: str) -> np.ndarray | None:
        if not self.disk_cache:
            return None
        path = self._path(name)
        try:
            with open(path, "rb") as fh:
                array = np.load(fh, allow_pickle=False)
        except (OSError, ValueError):
            return None  # absent or damaged: encode again
        if array.ndim != 1 or array.dtype != np.float32 or not np.isfinite(array).all():
            return None
        return array

    def _to_disk(self, name: str, vector: np.ndarray) -> None:
        if not self.disk_cache:
            return
        buffer = io.BytesIO()
        np.save(buffer, vector.astype(np.float32), allow_pickle=False)
        try:
            atomic_write_bytes(self._path(name), buffer.getvalue())
        except Exception:  # noqa: BLE001 - a read-only or full cache must not fail segmentation
            self.disk_cache = False

    def cached(self, name: str) -> bool:
        return name in self._memory

    # ------------------------------------------------------------------ encoding
    def encode(
        self, names: Sequence[str], *, truncate: bool = True, progress: Progress | None = None
    ) -> torch.Tensor:
        """N×D float32 CPU tensor: for each name the mean of its L2-normalised template
        embeddings, re-normalised. Names are used as given (callers trim and fold them)."""
        names = [str(n) for n in names]
        missing: list[str] = []
        with self._lock:
            for name in dict.fromkeys(names):
                if name in self._memory:
                    continue
                vector = self._from_disk(name)
                if vector is None:
                    missing.append(name)
                else:
                    self._memory[name] = vector
        unique = len(dict.fromkeys(names))
        if progress:
            progress.stage("text", unique, unit="names")
            progress.update(unique - len(missing))
        if missing:
            computed = self._compute(
                missing,
                truncate=truncate,
                on_names=(lambda k: progress.update(unique - len(missing) + k))
                if progress
                else None,
            )
            with self._lock:
                for name, vector in zip(missing, computed, strict=True):
                    self._memory[name] = vector
                    self._to_disk(name, vector)
        if not names:
            dim = next(iter(self._memory.values())).shape[0] if self._memory else 0
            return torch.zeros((0, dim), dtype=torch.float32)
        return torch.from_numpy(np.stack([self._memory[n] for n in names]))

    def _compute(
        self,
        names: list[str],
        truncate: bool = True,
        on_names: Callable[[int], None] | None = None,
    ) -> list[np.ndarray]:
        """The embeddings of ``names``; ``on_names(k)`` after about k names' prompts ran."""
        prompts = [t.format(n) for n in names for t in self.templates]
        per_name = len(self.templates)
        out: list[np.ndarray] = []
        with self._acquire() as clip:
            device = clip.device
            tokens = clip.tokenizer(prompts)
            if truncate:
                # similar lengths together: each group runs only to its own longest prompt
                order = torch.argsort(tokens.argmax(dim=-1), stable=True)
                step = BUCKET_PROMPTS
            else:
                order = torch.arange(len(prompts))
                step = BATCH_PROMPTS
            parts = []
            for start in range(0, len(prompts), step):
                idx = order[start : start + step]
                parts.append(
                    encode_tokens(clip.model, tokens[idx].to(device), truncate).float().cpu()
                )
                if on_names is not None:
                    on_names(min(len(names), (start + len(idx)) // per_name))
            feats = torch.empty((len(prompts), parts[0].shape[1]))
            feats[order] = torch.cat(parts)
            emb = F.normalize(feats, dim=-1).view(len(names), per_name, -1)
            mean = F.normalize(emb.mean(dim=1), dim=-1).numpy().astype(np.float32)
        for row in mean:
            out.append(np.ascontiguousarray(row))
        return out

    def encode_naive(self, names: Sequence[str]) -> torch.Tensor:
        """The reference computation (padded 77-token runs, no cache): for tests and perf."""
        return torch.from_numpy(np.stack(self._compute(list(names), truncate=False)))


def text_encoder_for(manager: Models, templates: Sequence[str] | str = "openai80") -> TextEncoder:
    """The one encoder per CLIP bundle and template set, kept in the bundle's ``derived`` cache
    so its memory cache lives (and goes) with the model. Model runs go through
    ``manager.use("clip")``; a name already cached needs no model run."""
    key_templates, _ = template_set(templates)
    clip = manager.get("clip")
    return clip.derived.get(
        ("text_encoder", key_templates),
        lambda: TextEncoder(clip, templates, acquire=lambda: manager.use("clip")),
    )
