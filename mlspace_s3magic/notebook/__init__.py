"""The notebook shells: the ``%s3access`` magic (and, later, widgets) over the core."""
