"""Model downloads: resumable, verified, cancellable, into the :class:`ModelStore` layout.

huggingface_hub does what it is good at (the endpoint from ``HF_ENDPOINT``, the user's token,
offline mode, the repository listing with each file's size and LFS sha256); the transfer is our
own ranged HTTP GET so that a user sees bytes, speed and ETA, can cancel at any chunk, and a
broken download continues where it stopped instead of starting again from zero:

- each file streams into ``<file>.part``; a later run sends ``Range: bytes=<part size>-`` and
  appends (or starts over when the server ignores the range);
- the sha256 is computed while the bytes arrive and compared with the registry pin or the
  hub's LFS metadata; a mismatch deletes the file and raises, so a corrupt file is never used;
- the final rename is atomic, and ``ovpaint-manifest.json`` is written only after every file
  verified: a model without a manifest is not installed, whatever else lies in its folder.

The metadata source is injectable (``source=``) so tests run against a local fake server.
"""

from __future__ import annotations

import errno
import fnmatch
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ovpaint.core.errors import BadInput, DiskFull, ModelUnavailable
from ovpaint.core.fileio import atomic_write_text
from ovpaint.core.jobs import CancelToken, Progress
from ovpaint.core.settings import Settings
from ovpaint.models.fixes import unavailable
from ovpaint.models.registry import ModelSpec, family
from ovpaint.models.store import ModelStore
from ovpaint.models.weights_check import check_weights

CHUNK_BYTES = 1 << 20
PROGRESS_INTERVAL_S = 0.1  # at most ten progress events a second
PART_SUFFIX = ".part"
# Pickle formats run code when loaded; only SAM2's .pt is accepted, and it is always read
# with ``torch.load(weights_only=True)``.
PICKLE_SUFFIXES = (".bin", ".ckpt", ".pth", ".pkl", ".pickle")
WEIGHT_SUFFIXES = (".safetensors", ".pt") + PICKLE_SUFFIXES


@dataclass(frozen=True)
class RemoteFile:
    """One file to fetch: where it goes in the repository layout, its URL, what it must be."""

    path: str
    url: str
    size: int | None = None
    sha256: str | None = None


@dataclass
class Resolved:
    files: list[RemoteFile]
    revision: str  # the commit the URLs point at (or the requested revision)
    headers: dict[str, str] = field(default_factory=dict)  # auth for the first request


class MetadataSource(Protocol):
    def resolve(self, spec: ModelSpec) -> Resolved: ...


def offline_mode() -> bool:
    """``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) as set now, or as the hub read it."""
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        value = os.environ.get(key, "").strip().upper()
        if value in ("1", "ON", "YES", "TRUE"):
            return True
    try:
        from huggingface_hub import constants

        return bool(constants.is_offline_mode())
    except Exception:  # noqa: BLE001 - an odd hub version must not break downloads
        return False


def offline_message(spec: ModelSpec) -> str:
    return (
        f"Cannot download '{spec.title}' ({spec.id}): offline mode is on (HF_HUB_OFFLINE). "
        "Unset HF_HUB_OFFLINE to download it, or $local."
    )


class HubSource:
    """Resolves a model's files on the Hugging Face hub (or a mirror set by ``HF_ENDPOINT``)."""

    def __init__(self, endpoint: str | None = None, token: str | None = None) -> None:
        self._endpoint = endpoint
        self._token = token

    @property
    def endpoint(self) -> str:
        if self._endpoint:
            return self._endpoint.rstrip("/")
        from huggingface_hub import constants

        return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")

    def token(self) -> str | None:
        if self._token is not None:
            return self._token or None
        try:
            from huggingface_hub import get_token

            return get_token()
        except Exception:  # noqa: BLE001 - no token is a normal state
            return None

    def resolve(self, spec: ModelSpec) -> Resolved:
        if offline_mode():
            raise unavailable(offline_message(spec), spec.id)
        from huggingface_hub import HfApi, hf_hub_url

        token = self.token()
        try:
            info = HfApi(endpoint=self.endpoint, token=token or False).model_info(
                spec.repo, revision=spec.revision, files_metadata=True, token=token or False
            )
        except Exception as exc:  # noqa: BLE001 - every hub failure becomes one clear message
            raise unavailable(_hub_error_message(spec, exc, self.endpoint), spec.id) from exc
        listing: dict[str, tuple[int | None, str | None]] = {}
        for sibling in info.siblings or []:
            lfs = sibling.lfs
            size = sibling.size if sibling.size is not None else (lfs.size if lfs else None)
            listing[sibling.rfilename] = (size, lfs.sha256 if lfs else None)
        revision = info.sha or spec.revision
        files = []
        for path, size, sha in select_files(spec, listing):
            url = hf_hub_url(spec.repo, path, revision=revision, endpoint=self.endpoint)
            files.append(RemoteFile(path, url, size, sha))
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return Resolved(files, revision, headers)


def _hub_error_message(spec: ModelSpec, exc: Exception, endpoint: str) -> str:
    """The message, with ``$`` fixes for :func:`~ovpaint.models.fixes.unavailable`."""
    name = type(exc).__name__
    if "Gated" in name:
        return (
            f"'{spec.title}' ({spec.repo}) needs a Hugging Face account that accepted its "
            "license: accept it on the model page, give $login, then retry; or $local."
        )
    if "RepositoryNotFound" in name or "RevisionNotFound" in name:
        return (
            f"The repository {spec.repo} (revision {spec.revision}) was not found on "
            f"{endpoint}; it may have moved. You can $local."
        )
    if "Offline" in name:
        return offline_message(spec)
    detail = str(exc).replace("$", "$$")
    return (
        f"Could not reach {endpoint} to download '{spec.title}' ({spec.id}): {name}: "
        f"{detail}. Check the network (or HF_ENDPOINT), then $again; or $local."
    )


def select_files(
    spec: ModelSpec, listing: dict[str, tuple[int | None, str | None]]
) -> list[tuple[str, int | None, str | None]]:
    """The files of ``spec`` in a repository listing ``path -> (size, sha256)``, with the
    registry's pins taking precedence over the listing's metadata."""
    chosen: list[tuple[str, int | None, str | None]] = []
    if spec.is_folder:
        for path in sorted(listing):
            if any(fnmatch.fnmatchcase(path, pat) for pat in spec.allow_patterns):
                if path.endswith(PICKLE_SUFFIXES):
                    continue
                chosen.append((path, *listing[path]))
        names = [p for p, _, _ in chosen]
        if "model_index.json" not in names or not any(n.endswith(".safetensors") for n in names):
            raise unavailable(
                f"The repository {spec.repo} does not offer '{spec.title}' as a diffusers "
                "folder with safetensors weights; it cannot be downloaded safely. You can "
                "$local.",
                spec.id,
            )
        return chosen
    for pinned in spec.files:
        if pinned.path not in listing:
            raise unavailable(
                f"The repository {spec.repo} has no file {pinned.path} for '{spec.title}'. "
                "You can $local.",
                spec.id,
            )
        size, sha = listing[pinned.path]
        chosen.append((pinned.path, pinned.size or size, pinned.sha256 or sha))
    return chosen


# --------------------------------------------------------------------------- transfer


def sha256_file(path: Path, cancel: CancelToken | None = None) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK_BYTES * 4):
            if cancel is not None:
                cancel.check()
            digest.update(chunk)
    return digest.hexdigest()


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


class _Meter:
    """Bytes done across all files of one download, with speed and ETA in the messages.

    Speed counts only bytes moved in this run, so a resumed download shows the network's
    real speed rather than the bytes found on disk."""

    def __init__(self, progress: Progress | None, stage: str, total: int | None) -> None:
        self.progress = progress
        self.total = total
        self.done = 0
        self.transferred = 0
        self.started = time.perf_counter()
        self._last_emit = 0.0
        self._last_done = 0
        if progress is not None:
            progress.stage(stage, total, "resolving files")

    def speed(self) -> float | None:
        elapsed = time.perf_counter() - self.started
        return self.transferred / elapsed if elapsed > 0 and self.transferred else None

    def eta(self) -> float | None:
        speed = self.speed()
        if not speed or self.total is None:
            return None
        return max(0.0, (self.total - self.done) / speed)

    def add(self, n: int, *, transferred: bool, file: str, force: bool = False) -> None:
        self.done += n
        if transferred:
            self.transferred += n
        now = time.perf_counter()
        if self.progress is None or (not force and now - self._last_emit < PROGRESS_INTERVAL_S):
            return
        if self.done < self._last_done:
            return  # re-counting a part after a retry: never show progress going back
        self._last_emit = now
        self._last_done = self.done
        parts = [file]
        speed = self.speed()
        if speed:
            parts.append(f"{_fmt_bytes(speed)}/s")
        eta = self.eta()
        if eta is not None:
            parts.append(f"ETA {int(eta) // 60}:{int(eta) % 60:02d}")
        self.progress.update(self.done, self.total, " · ".join(parts))


def _http_session() -> Any:
    import requests

    session = requests.Session()
    session.headers["User-Agent"] = "ovpaint-downloader"
    return session


def _parse_content_range_start(value: str | None) -> int | None:
    # "bytes 100-199/200"
    if not value or not value.startswith("bytes "):
        return None
    try:
        return int(value[6:].split("-", 1)[0])
    except ValueError:
        return None


def fetch_file(
    remote: RemoteFile,
    dest: Path,
    *,
    headers: dict[str, str] | None = None,
    meter: _Meter | None = None,
    cancel: CancelToken | None = None,
    session: Any = None,
    retries: int = 3,
    timeout: float = 30.0,
) -> str:
    """Download ``remote`` to ``dest`` (resuming ``dest.part``), verify it, rename atomically.

    Returns the file's sha256. On cancel the part is kept for a later resume; on a hash or
    size mismatch it is deleted and :class:`ModelUnavailable` raised.
    """
    import requests

    session = session or _http_session()
    meter = meter or _Meter(None, "", None)
    part = dest.with_name(dest.name + PART_SUFFIX)
    dest.parent.mkdir(parents=True, exist_ok=True)
    attempt = 0
    base = meter.done
    while True:
        if cancel is not None:
            cancel.check()
        meter.done = base  # bytes of this file are counted again from what is on disk
        offset = part.stat().st_size if part.exists() else 0
        if remote.size is not None and offset > remote.size:
            part.unlink()
            offset = 0
        try:
            digest = _download_into(
                remote, part, offset, headers or {}, meter, cancel, session, timeout
            )
            break
        except (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
        ) as exc:
            attempt += 1
            if attempt > retries:
                raise unavailable(
                    f"The download of {remote.path} broke off ({type(exc).__name__}); "
                    f"{_fmt_bytes(part.stat().st_size if part.exists() else 0)} are kept. "
                    "$again to resume where it stopped."
                ) from exc
            time.sleep(min(2.0 ** (attempt - 1), 10.0) * 0.5)
        except requests.RequestException as exc:
            raise ModelUnavailable(
                f"Could not download {remote.path} from {remote.url}: {type(exc).__name__}: {exc}"
            ) from exc
    meter.add(0, transferred=False, file=remote.path, force=True)
    _verify_part(remote, part, digest)
    os.replace(part, dest)
    return digest


def _download_into(
    remote: RemoteFile,
    part: Path,
    offset: int,
    headers: dict[str, str],
    meter: _Meter,
    cancel: CancelToken | None,
    session: Any,
    timeout: float,
) -> str:
    digest = hashlib.sha256()
    request_headers = dict(headers)
    if offset and remote.size is not None and offset == remote.size:
        # Complete on disk already (a run cancelled during verification): just hash it.
        digest = _hash_existing(part, digest, meter, remote.path, cancel)
        return digest.hexdigest()
    if offset:
        request_headers["Range"] = f"bytes={offset}-"
    with session.get(
        remote.url,
        headers=request_headers,
        stream=True,
        timeout=(10.0, timeout),
        allow_redirects=True,
    ) as resp:
        if resp.status_code == 416 and offset:
            # The part is not a prefix the server can continue: start over.
            part.unlink(missing_ok=True)
            return _download_into(remote, part, 0, headers, meter, cancel, session, timeout)
        if resp.status_code in (401, 403):
            raise unavailable(
                f"The server refused {remote.path} (HTTP {resp.status_code}). The model may "
                "need $login and an accepted license."
            )
        if resp.status_code >= 500 or resp.status_code == 429:
            import requests

            # A busy or failing mirror: worth the same retries as a dropped connection.
            raise requests.ConnectionError(f"HTTP {resp.status_code} from {remote.url}")
        if resp.status_code not in (200, 206):
            raise ModelUnavailable(
                f"The server answered HTTP {resp.status_code} for {remote.path} ({remote.url})."
            )
        start = (
            _parse_content_range_start(resp.headers.get("Content-Range"))
            if resp.status_code == 206
            else 0
        )
        if offset and start not in (0, offset):
            # A range other than the one asked for: fetch the whole file instead.
            part.unlink(missing_ok=True)
            return _download_into(remote, part, 0, headers, meter, cancel, session, timeout)
        if offset and start == offset:
            digest = _hash_existing(part, digest, meter, remote.path, cancel)
            mode = "ab"
        else:
            mode = "wb"  # the server ignored the range: the body is the whole file
        with open(part, mode) as fh:
            for chunk in resp.iter_content(chunk_size=CHUNK_BYTES):
                if cancel is not None:
                    cancel.check()
                if not chunk:
                    continue
                fh.write(chunk)
                digest.update(chunk)
                meter.add(len(chunk), transferred=True, file=remote.path)
    return digest.hexdigest()


def _hash_existing(
    part: Path, digest: Any, meter: _Meter, name: str, cancel: CancelToken | None
) -> Any:
    with open(part, "rb") as fh:
        while chunk := fh.read(CHUNK_BYTES * 4):
            if cancel is not None:
                cancel.check()
            digest.update(chunk)
            meter.add(len(chunk), transferred=False, file=name)
    return digest


def _verify_part(remote: RemoteFile, part: Path, digest: str) -> None:
    size = part.stat().st_size
    problem = None
    if remote.size is not None and size != remote.size:
        problem = f"{size} bytes instead of {remote.size}"
    elif remote.sha256 and digest.lower() != remote.sha256.lower():
        problem = f"sha256 {digest[:12]}… instead of {remote.sha256[:12]}…"
    if problem:
        part.unlink(missing_ok=True)
        raise unavailable(
            f"The downloaded file {remote.path} is corrupt ({problem}) and was deleted. "
            "$again; if it keeps failing, the mirror may serve a different file."
        )


# --------------------------------------------------------------------------- public API


@dataclass
class DownloadResult:
    model_id: str
    path: Path  # what the loader gets (weights file or folder)
    bytes_downloaded: int
    files: list[dict]
    already_installed: bool = False


def download(
    spec: ModelSpec,
    store: ModelStore,
    *,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    source: MetadataSource | None = None,
    session: Any = None,
    force: bool = False,
    retries: int = 3,
) -> DownloadResult:
    """Fetch every file of ``spec`` into ``store`` and write its manifest once all verified."""
    if not force:
        existing = store.downloaded_path(spec)
        if existing is not None:
            manifest = store.read_manifest(spec) or {}
            return DownloadResult(spec.id, existing, 0, manifest.get("files", []), True)
    if force:
        store.manifest_path(spec).unlink(missing_ok=True)
    if source is None and offline_mode():
        raise unavailable(offline_message(spec), spec.id)
    source = source or HubSource()
    resolved = source.resolve(spec)
    folder = store.folder(spec)
    folder.mkdir(parents=True, exist_ok=True)
    known = [f.size for f in resolved.files]
    total = sum(s for s in known if s is not None) if all(s is not None for s in known) else None
    _check_free_space(folder, resolved.files)
    meter = _Meter(progress, f"download {spec.id}", total)
    session = session or _http_session()
    with _download_lock(spec, folder):
        entries = _fetch_all(spec, folder, resolved, meter, cancel, session, retries)
    meter.add(0, transferred=False, file="done", force=True)
    manifest = {
        "id": spec.id,
        "repo": spec.repo,
        "revision": resolved.revision,
        "downloaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "files": entries,
    }
    atomic_write_text(store.manifest_path(spec), json.dumps(manifest, indent=2))
    path = store.downloaded_path(spec)
    if path is None:  # pragma: no cover - would mean the files changed under us
        raise ModelUnavailable(f"{spec.id} was downloaded but its files changed on disk.")
    return DownloadResult(spec.id, path, meter.transferred, entries)


@contextmanager
def _download_lock(spec: ModelSpec, folder: Path) -> Iterator[None]:
    """One download per model at a time (the app and a terminal may both try): two writers
    appending to one ``.part`` would corrupt it."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(folder / ".ovpaint-download.lock"), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise ModelUnavailable(
            f"'{spec.title}' ({spec.id}) is already being downloaded by another ovpaint "
            "window or command; wait for it to finish."
        ) from None
    try:
        yield
    finally:
        lock.release()


def _fetch_all(
    spec: ModelSpec,
    folder: Path,
    resolved: Resolved,
    meter: _Meter,
    cancel: CancelToken | None,
    session: Any,
    retries: int,
) -> list[dict]:
    entries = []
    try:
        for remote in resolved.files:
            if cancel is not None:
                cancel.check()
            dest = _safe_dest(folder, remote.path)
            digest = _reuse_complete(remote, dest, meter, cancel)
            if digest is None:
                if dest.exists():
                    dest.unlink()  # a stale file that no longer matches
                digest = fetch_file(
                    remote,
                    dest,
                    headers=resolved.headers,
                    meter=meter,
                    cancel=cancel,
                    session=session,
                    retries=retries,
                )
            entries.append({"path": remote.path, "size": dest.stat().st_size, "sha256": digest})
    except OSError as exc:
        if getattr(exc, "errno", None) == errno.ENOSPC:
            raise DiskFull(
                f"The disk is full while downloading {spec.id} into {folder}; "
                "the part already downloaded is kept for a resume."
            ) from exc
        raise
    return entries


def _safe_dest(folder: Path, repo_path: str) -> Path:
    dest = (folder / repo_path).resolve()
    if folder.resolve() not in dest.parents:
        raise ModelUnavailable(f"Refusing a file path outside the model folder: {repo_path}")
    return dest


def _reuse_complete(
    remote: RemoteFile, dest: Path, meter: _Meter, cancel: CancelToken | None
) -> str | None:
    """The sha256 of a file already complete at ``dest`` (from an interrupted multi-file run)."""
    if not dest.is_file() or (remote.size is not None and dest.stat().st_size != remote.size):
        return None
    if remote.sha256 is None:
        return None  # nothing to check it against (small config files): fetch again
    digest = sha256_file(dest, cancel)
    if remote.sha256 and digest.lower() != remote.sha256.lower():
        return None
    meter.add(dest.stat().st_size, transferred=False, file=remote.path, force=True)
    return digest


def _check_free_space(folder: Path, files: Iterable[RemoteFile]) -> None:
    need = 0
    for remote in files:
        if remote.size is None:
            continue
        dest = folder / remote.path
        part = dest.with_name(dest.name + PART_SUFFIX)
        have = (
            dest.stat().st_size
            if dest.is_file()
            else (part.stat().st_size if part.is_file() else 0)
        )
        need += max(0, remote.size - have)
    free = shutil.disk_usage(folder).free
    if need > free:
        raise DiskFull(
            f"Not enough disk space in {folder}: {_fmt_bytes(need)} needed, {_fmt_bytes(free)} "
            "free. Free some space or choose another folder (setting 'model_dir' or "
            "OVPAINT_MODEL_DIR)."
        )


# --------------------------------------------------------------------------- verify / import


@dataclass
class VerifyReport:
    model_id: str
    state: str  # "ok" | "missing" | "corrupt" | "local"
    path: Path | None = None
    missing: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.state in ("ok", "local")


def verify(spec: ModelSpec, store: ModelStore, cancel: CancelToken | None = None) -> VerifyReport:
    """Recompute every file's sha256 against the manifest (or check a user's local copy)."""
    override = store.override_path(spec)
    if override is not None:
        try:
            check_weights(spec, check_local(spec, override))
        except BadInput as exc:
            return VerifyReport(spec.id, "missing", override, [str(override)], [], str(exc))
        return VerifyReport(
            spec.id,
            "local",
            override,
            message=f"local copy at {override} (no recorded hashes to check)",
        )
    manifest = store.read_manifest(spec)
    if manifest is None:
        return VerifyReport(
            spec.id,
            "missing",
            None,
            message=f"not installed: run `ovpaint models download {spec.id}`",
        )
    folder = store.folder(spec)
    report = VerifyReport(spec.id, "ok", folder)
    for entry in manifest.get("files", []):
        path = folder / entry["path"]
        if not path.is_file():
            report.missing.append(entry["path"])
            continue
        if path.stat().st_size != entry.get("size"):
            report.corrupt.append(entry["path"])
            continue
        expected = entry.get("sha256")
        if expected and sha256_file(path, cancel) != expected:
            report.corrupt.append(entry["path"])
    if report.missing or report.corrupt:
        report.state = "corrupt"
        bad = ", ".join(report.missing + report.corrupt)
        report.message = (
            f"damaged files: {bad}. Run `ovpaint models download {spec.id} "
            "--force` to fetch it again."
        )
    else:
        report.path = store.downloaded_path(spec)
        report.message = f"{len(manifest.get('files', []))} files verified"
    return report


def check_local(spec: ModelSpec, path: Path) -> Path:
    """Check that ``path`` looks like a usable copy of ``spec``; return what the loader gets."""
    path = Path(path).expanduser()
    if not path.exists():
        raise BadInput(f"No such file or folder: {path}")
    if spec.is_folder:
        if path.is_file():
            raise BadInput(
                f"'{spec.title}' needs a diffusers folder (with model_index.json), "
                f"not a single file: {path}"
            )
        if not (path / "model_index.json").is_file():
            raise BadInput(f"{path} is not a diffusers folder: model_index.json is missing.")
        weights = [p for p in path.rglob("*") if p.suffix in WEIGHT_SUFFIXES]
        if not any(p.suffix == ".safetensors" for p in weights):
            raise BadInput(
                f"{path} holds no .safetensors weights. Pickle weights (.bin/.ckpt) can run "
                "code when loaded and are refused; convert them to safetensors first."
            )
        return path
    allowed = family(spec.role).weight_suffixes
    if path.is_dir():
        for pinned in spec.files:
            if (path / pinned.path).is_file():
                return check_local(spec, path / pinned.path)
        names = ", ".join(f.path for f in spec.files)
        raise BadInput(f"{path} does not contain {names}; give the weights file itself.")
    suffix = path.suffix.lower()
    if suffix not in allowed:
        if suffix in PICKLE_SUFFIXES or suffix == ".pt":
            raise BadInput(
                f"{path.name} is a pickle checkpoint, which can run code when loaded; "
                f"'{spec.title}' accepts only {' or '.join(allowed)} files."
            )
        raise BadInput(
            f"{path.name} is not a weights file for '{spec.title}' "
            f"(expected {' or '.join(allowed)})."
        )
    if path.stat().st_size == 0:
        raise BadInput(f"{path} is empty.")
    return path


def import_local(spec: ModelSpec, path: str | os.PathLike, settings: Settings) -> Path:
    """Point ``spec`` at a local copy (after checking it) and save that in the settings."""
    path = Path(path).expanduser().resolve()
    check_weights(spec, check_local(spec, path))  # its format and shapes, not only its name
    paths = dict(settings["local_model_paths"] or {})
    paths[spec.id] = str(path)
    settings["local_model_paths"] = paths
    settings.save()
    return path
