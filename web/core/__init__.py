"""The platform's shared core: settings, database rows, storage, broker and the services the HTTP layer and the
worker both use. It imports no Flask and no TensorFlow."""
