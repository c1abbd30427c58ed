"""What the HTTP routes share: :class:`Service` (the pipeline, its locks, the indexing jobs and
the server's settings) and the API's URL prefix."""

import os
import threading
from pathlib import Path
from typing import Any

from mmrag.errors import FeatureNotAvailableError
from mmrag.integrations.server.jobs import JobManager, _LockedStore
from mmrag.integrations.server.schemas import HitOut
from mmrag.pipeline.pipeline import Pipeline
from mmrag.types import Hit

__all__ = ["API_PREFIX", "Service", "megabytes", "model_name", "version"]

API_PREFIX = "/api/v1"


class Service:
    """What the routes share: the pipeline, its locks, the jobs and the settings."""

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        api_key: str | None,
        max_upload_bytes: int,
        upload_dir: Path,
        allowed_roots: list[Path],
    ) -> None:
        self.pipeline = pipeline
        self.api_key = api_key
        self.max_upload_bytes = max_upload_bytes
        self.upload_dir = upload_dir
        self.allowed_roots = allowed_roots
        self.store_lock = threading.RLock()
        self.ask_lock = threading.Lock()  # one generation at a time (the model is shared)
        self.open_lock = threading.Lock()
        self.jobs = JobManager(pipeline)
        self._opened = False

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
            for component in (pipe.embedder, pipe.reranker):  # searches use both
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

    def load_generator(self) -> None:
        """Load the generator's model (call under ``ask_lock``); 503 if it cannot be had."""
        spec = self.pipeline.config.generator
        if spec is None:
            raise FeatureNotAvailableError(
                "no generator is configured, so questions cannot be answered; add a "
                "[generator] section to the server's config (or use /search)"
            )
        generator = self.pipeline.generator
        loader = getattr(generator, "load", None)
        if callable(loader) and not getattr(generator, "is_loaded", True):
            try:
                loader()
            except OSError as error:
                model = spec.init_parameters.get("model", spec.type)
                raise FeatureNotAvailableError(
                    f"the generator model {model} could not be loaded, so questions cannot be "
                    f"answered (use /search): {error}"
                ) from error

    def check_path(self, path: str) -> str | None:
        """Why ``path`` may not be indexed (outside the allowed roots), or ``None``."""
        real = os.path.realpath(path)
        for root in self.allowed_roots:
            if real == str(root) or real.startswith(str(root) + os.sep):
                return None
        return f"{path} resolves to {real}, outside the allowed roots"

    def hit_out(self, hit: Hit, root_path: str) -> HitOut:
        return HitOut(**hit.to_dict(), image_url=f"{root_path}{API_PREFIX}/items/{hit.id}/image")


def model_name(spec: Any) -> str | None:
    """The model a component spec names (its ``model`` parameter, else its type), or ``None``."""
    if spec is None:
        return None
    return str(spec.init_parameters.get("model", spec.type))


def megabytes(size: int) -> str:
    """``size`` bytes in MB, for messages (three significant digits)."""
    return f"{size / 2**20:.3g}"


def version() -> str:
    """The installed mmrag version."""
    from mmrag import __version__

    return __version__
