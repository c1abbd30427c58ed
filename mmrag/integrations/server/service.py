"""What the HTTP routes share: :class:`Service` (the pipeline, its locks, the indexing jobs, the
API keys and their tenants, and the server's settings) and the API's URL prefix."""

import hashlib
import hmac
import os
import re
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request

from mmrag.errors import FeatureNotAvailableError
from mmrag.integrations.server.jobs import JobManager, _LockedStore
from mmrag.integrations.server.schemas import HitOut
from mmrag.pipeline.pipeline import Pipeline
from mmrag.types import Hit

__all__ = [
    "API_PREFIX",
    "TENANT_NAME",
    "Service",
    "caller",
    "megabytes",
    "model_name",
    "stand_ins",
    "version",
]

API_PREFIX = "/api/v1"

#: What a tenant's name looks like (it names the tenant's upload folder, so no dots first).
TENANT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class Service:
    """What the routes share: the pipeline, its locks, the jobs, the keys and the settings.

    Keys: ``api_key`` is the admin key (tenant ``None``: it sees and manages every tenant's
    items, as a single-tenant server's key always did); ``tenant_keys`` maps each tenant's
    name to its key. With no key at all the API is open (tenant ``None``).
    """

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        api_key: str | None,
        max_upload_bytes: int,
        upload_dir: Path,
        allowed_roots: list[Path],
        tenant_keys: Mapping[str, str] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.api_key = api_key
        self.tenants = sorted(tenant_keys or {})
        self._keys: list[tuple[bytes, str | None]] = [
            (_digest(key), name) for name, key in (tenant_keys or {}).items()
        ]
        if api_key is not None:
            self._keys.append((_digest(api_key), None))
        self.max_upload_bytes = max_upload_bytes
        self.upload_dir = upload_dir
        self.allowed_roots = allowed_roots
        self.store_lock = threading.RLock()
        self.ask_lock = threading.Lock()  # one generation at a time (the model is shared)
        self.open_lock = threading.Lock()
        self.jobs = JobManager(pipeline)
        self.stand_ins = stand_ins(pipeline.config)  # tiny test models: shown as a banner
        self._opened = False

    # -- keys and tenants ------------------------------------------------------------------------

    @property
    def auth_required(self) -> bool:
        """Whether the API needs a key (an admin key or tenants are configured)."""
        return bool(self._keys)

    def authenticate(self, given: str) -> tuple[bool, str | None]:
        """Whether ``given`` is a known key, and its tenant (``None``: the admin key).

        Every key is compared, in constant time, whatever matched (nothing to time)."""
        candidate = _digest(given)
        matched, tenant = False, None
        for digest, name in self._keys:
            if hmac.compare_digest(candidate, digest):
                matched, tenant = True, name
        return matched, tenant

    def uploads_for(self, tenant: str | None) -> Path:
        """Where ``tenant``'s uploads are kept: ``upload_dir/<tenant>`` (admin: ``upload_dir``)."""
        return self.upload_dir if tenant is None else self.upload_dir / tenant

    # -- the pipeline ----------------------------------------------------------------------------

    def open(self) -> None:
        """Open the store behind the lock, load the embedder and reranker (once, thread-safely)."""
        with self.open_lock:
            if self._opened:
                return
            pipe = self.pipeline
            store = pipe.store
            if pipe.config.store.backend == "embedded" and not isinstance(store, _LockedStore):
                # One in-process shard: serialise its calls. (A Qdrant server needs no lock.)
                pipe.wrap_store(lambda inner: _LockedStore(inner, self.store_lock))  # type: ignore[arg-type,return-value]
            from mmrag.pipeline.rag import rerank_roles

            # Searches use the embedder and the default plan's rerankers.
            roles = ["embedder", *rerank_roles(pipe)]
            for component in (getattr(pipe, role) for role in roles):
                loader = getattr(component, "load", None)
                if callable(loader):
                    loader()
            self._opened = True

    def ready(self) -> Pipeline:
        if not self._opened:
            self.open()
        return self.pipeline

    @property
    def ask_available(self) -> bool:
        return self.pipeline.config.generator is not None

    def require_generator(self) -> None:
        """503 (``FeatureNotAvailableError``) when no generator is configured."""
        if self.pipeline.config.generator is None:
            raise FeatureNotAvailableError(
                "no generator is configured, so questions cannot be answered; add a "
                "[generator] section to the server's config (or use /search)"
            )

    def load_generator(self) -> None:
        """Load the generator's model (call under ``ask_lock``); 503 if it cannot be had."""
        self.require_generator()
        generator = self.pipeline.generator
        loader = getattr(generator, "load", None)
        if callable(loader) and not getattr(generator, "is_loaded", True):
            try:
                loader()
            except OSError as error:
                model = model_name(self.pipeline.config.generator)
                raise FeatureNotAvailableError(
                    f"the generator model {model} could not be loaded, so questions cannot be "
                    f"answered (use /search): {error}"
                ) from error

    def owns(self, tenant: str | None, item_id: str) -> bool:
        """Whether the point ``item_id`` exists and is ``tenant``'s (the admin owns all)."""
        if tenant is None:
            return True
        records = self.ready().store.retrieve([item_id])
        return bool(records) and records[0].payload.get("tenant") == tenant

    # -- server paths ----------------------------------------------------------------------------

    def check_path(self, path: str, tenant: str | None = None) -> str | None:
        """Why ``path`` may not be indexed by ``tenant``, or ``None``: it must be inside the
        allowed roots and, for a tenant, not inside another tenant's (or the admin's) uploads."""
        real = os.path.realpath(path)
        if not any(_inside(real, root) for root in self.allowed_roots):
            return f"{path} resolves to {real}, outside the allowed roots"
        foreign = self.foreign_uploads(tenant)
        if foreign is not None and foreign(real):
            return f"{path} is inside the server's upload folder, which is not yours"
        return None

    def path_check(self, tenant: str | None) -> Callable[[str], str | None]:
        """:meth:`check_path` for ``tenant`` (what a job checks each file it finds with)."""
        return lambda path: self.check_path(path, tenant)

    def foreign_uploads(self, tenant: str | None) -> Callable[[str], bool] | None:
        """For a tenant: whether a file a job found is someone else's upload (left out unseen,
        so a job over a folder holding the uploads never reveals their names); admin: None."""
        if tenant is None:
            return None
        own = self.uploads_for(tenant)

        def foreign(path: str) -> bool:
            real = os.path.realpath(path)
            return _inside(real, self.upload_dir) and not _inside(real, own)

        return foreign

    def hit_out(self, hit: Hit, root_path: str) -> HitOut:
        """A hit as the API returns it, with its image URL and the item's user metadata."""
        return HitOut(
            **hit.to_dict(),
            metadata=dict(hit.item.metadata),
            image_url=f"{root_path}{API_PREFIX}/items/{hit.id}/image",
        )


def caller(request: Request) -> str | None:
    """The tenant of the request's key (``None``: the admin key, or an open server).

    The auth middleware sets it; a request it did not vet (it never should be) is refused.
    """
    if not getattr(request.state, "authenticated", False):
        raise HTTPException(401, "this server needs an API key: send X-API-Key or Bearer")
    tenant: str | None = request.state.tenant
    return tenant


def _inside(real: str, root: Path) -> bool:
    return real == str(root) or real.startswith(str(root) + os.sep)


def model_name(spec: Any) -> str | None:
    """The model a component spec names (its ``model`` parameter, else its type), or ``None``."""
    if spec is None:
        return None
    return str(spec.init_parameters.get("model", spec.type))


def stand_ins(config: Any) -> dict[str, str]:
    """The components that run on tiny random test models: ``{role: the real model each
    stands in for}`` (their rankings and answers are meaningless; the web page says so).

    ``mmrag.testing`` writes a ``mmrag_tiny.json`` manifest beside every tiny model (the
    offline quickstart's too); a component whose ``model`` is such a folder is a stand-in.
    """
    from mmrag.testing.manifest import MANIFEST_NAME, read_manifest

    found: dict[str, str] = {}
    for role in ("embedder", "reranker", "generator"):
        spec = getattr(config, role, None)
        model = spec.init_parameters.get("model") if spec is not None else None
        if not isinstance(model, str | os.PathLike) or not str(model):
            continue
        folder = Path(model).expanduser()
        if (folder / MANIFEST_NAME).is_file():
            try:
                found[role] = read_manifest(folder).stands_in_for
            except (OSError, ValueError, TypeError):  # a damaged manifest: still a stand-in
                found[role] = "a real model"
    return found


def megabytes(size: int) -> str:
    """``size`` bytes in MB, for messages (three significant digits)."""
    return f"{size / 2**20:.3g}"


def version() -> str:
    """The installed mmrag version."""
    from mmrag import __version__

    return __version__
