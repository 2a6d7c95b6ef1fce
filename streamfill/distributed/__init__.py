"""Scale-out: whole clips (``batch``) or chunks of one long clip (``process --ray``) rendered by several
workers, locally or on a Ray cluster, with the output a single machine would write.

DESIGN layer: above ``streamfill.api`` (workers call it and ``build``), below ``streamfill.cli``. ``ray`` is
imported only by ``streamfill.distributed.ray_backend``, and only inside its functions: without the ``ray``
extra everything here but the Ray executor works.
"""

from streamfill.distributed.batch import ClipJob, ClipResult, batch_jobs, run_batch_local
from streamfill.distributed.chunks import (
    Chunk,
    ChunkedResult,
    ChunkResult,
    ChunkWorker,
    LocalExecutor,
    process_chunked,
    rolls,
)

__all__ = ["Chunk", "ChunkResult", "ChunkWorker", "ChunkedResult", "ClipJob", "ClipResult", "LocalExecutor",
           "batch_jobs", "process_chunked", "rolls", "run_batch_local"]
