"""Data arrival: new labelled rows become ordinary, immutable dataset versions.

* `append`   rows appended to a dataset (over HTTP, from a stream, from serving's feedback): the
             next version holds the previous version's rows and the new ones, validated against
             its schema, recorded with where they came from (`DatasetAppend`).
* `rows`     checking rows against a dataset's schema, from JSON records or CSV text.
* `sources`  the stream-source registry (``redis``, ``folder``): one entry per kind of source.
* `redis_source`, `folder_source`   the consumers; `consume` runs one as a command.
* `feedback` serving's request log (opt-in per deployment, sealed) and the delayed labels.
"""
