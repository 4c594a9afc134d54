"""gunicorn settings for `make run`; production passes its own flags or file."""


def post_worker_init(worker):
    """With JOB_BACKEND=thread, each web worker process runs jobs on a thread of its own."""
    backend = worker.wsgi.extensions["veriskill.jobs"]
    start = getattr(backend, "start", None)
    if start is not None:
        start()


def on_starting(server):
    """Several worker processes add up their metrics through files in PROMETHEUS_MULTIPROC_DIR
    (app/observability/procdir.py): the master empties the folder before any worker starts,
    and names one under instance/ when there are several workers and none was given."""
    import os

    from app.observability import procdir
    from config import INSTANCE_DIR

    if not os.environ.get(procdir.MULTIPROC_ENV) and server.cfg.workers > 1:
        if server.cfg.preload_app:
            server.log.warning(
                "set %s: with --preload it cannot be chosen here", procdir.MULTIPROC_ENV
            )
        else:
            os.environ[procdir.MULTIPROC_ENV] = str(INSTANCE_DIR / "prometheus")
    procdir.wipe_at_start()
