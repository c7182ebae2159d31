"""The Celery worker: claims queued jobs from the database and enhances them in batches with MIRNet."""
