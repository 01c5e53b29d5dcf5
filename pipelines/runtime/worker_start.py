"""What a local worker process needs before its first file, imported once by the fork server
local workers are forked from (`pipelines.runtime.runners.local_cluster_settings`).

Importing this module imports the sweep's tasks (Prefect, the assay libraries, pyarrow) and
loads the numba kernels from their cache, so that every forked worker starts with them.
"""

from __future__ import annotations

import gating
import pipelines.flows  # noqa: F401 - imported for the workers forked after it

gating.compile_kernels()
