"""One reader per data format, each declared in `modelworks.data.formats` and imported on first use.

A reader takes the resolved location (a path, or the name after a source prefix) and the data
config, and returns a `modelworks.data.sources.LoadedData`; a file it cannot read is a
`UserError` that names the file.
"""
