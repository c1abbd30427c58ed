"""The Ray engine: the indexing job spread over a Ray cluster (``mmrag index --engine ray``).

The same steps as the local job (:mod:`mmrag.pipeline.indexing.steps`: same point ids, same
skipping of stored items, same failure report, same stale-version policy), each step in its own
Ray Data stage::

    files ─► list ─────────► render ───────► embed ──────────────► write
             one task per     tasks, a        actor pool: one       server: parallel writers,
             file: hash,      batch of        model per actor,      each with its own client;
             pages, skip      pages each      ``gpus_per_actor``    embedded: the driver
             what is stored

Stages stream into each other with Ray Data's backpressure, so memory stays bounded whatever
the number of pages. Settings live in the ``[ray]`` section (:class:`mmrag.config.RayConfig`).

Where the sources are read: the driver expands the inputs; each listing task opens its file by
absolute path, so every node must see the files at the same path (a shared or mounted folder).
With a Qdrant server, the writers also put page images into the asset store, so
``store.assets`` must be a URL every node can reach (``s3://…`` or a shared folder).

Example:
    >>> from mmrag.integrations.ray import index_with_ray                        # doctest: +SKIP
    >>> from mmrag.pipeline.pipeline import Pipeline                            # doctest: +SKIP
    >>> pipe = Pipeline.from_config("mmrag.toml")                               # doctest: +SKIP
    >>> index_with_ray(pipe, ["/data/reports/"], num_embed_actors=4,
    ...                gpus_per_actor=1).summary()                              # doctest: +SKIP
    '120000 indexed, 0 skipped (already present), 3 failed'
"""

from mmrag.integrations.ray.driver import index_with_ray
from mmrag.integrations.ray.rows import AssetOpener, StoredIds, StoreOpener
from mmrag.integrations.ray.stages import EmbedPages, WritePages, list_source, render_pages

__all__ = [
    "AssetOpener",
    "EmbedPages",
    "StoreOpener",
    "StoredIds",
    "WritePages",
    "index_with_ray",
    "list_source",
    "render_pages",
]
