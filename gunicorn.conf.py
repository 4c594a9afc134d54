"""gunicorn settings for `make run`; production passes its own flags or file."""


def post_worker_init(worker):
    """With JOB_BACKEND=thread, each web worker process runs jobs on a thread of its own."""
    backend = worker.wsgi.extensions["veriskill.jobs"]
    start = getattr(backend, "start", None)
    if start is not None:
        start()
