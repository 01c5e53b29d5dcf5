"""Process tuning in one place: glibc's allocator settings (`memory`), where the sweep's per-file
work runs and how its local workers start (`runners`, `worker_start`), and the embedded Prefect
server the command line runs flows against (`server`), and how the command line turns SIGINT and
SIGTERM into an orderly end (`signals`). Nothing here decides what happens to a file; that is
the ingest engine's (`pipelines.ingest`)."""
