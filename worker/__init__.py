"""The Celery worker: claims queued jobs from the database and enhances them in batches with MIRNet.

How a job gets done exactly once, although messages are delivered at least once:

- ``celery_app``: Celery configured for at-least-once delivery (acks late, prefetch 1, reject on worker loss,
  time limits) and the per-process model loading that stops the worker loudly when the model cannot load.
- ``tasks``: ``worker.enhance_job(job_id)`` and ``worker.recover_stale_jobs()``, thin wrappers of
- ``services``: claim the job and up to MAX_BATCH - 1 other queued jobs (``batching``), run them through the
  model together, store the results, score them against references (``scoring``), and end each claim with a
  fenced write (``jobstate``) while a heartbeat keeps the claims' leases alive (``heartbeat``).
- ``jobstate.recover_stale``: jobs whose worker died (lease expired) go back to the queue; ``beat`` runs it.
- ``context`` and ``model``: what each worker process holds, one ``WorkerContext`` for every task (database
  sessions, storage client, and the served model, loaded once and switched between batches).
"""
