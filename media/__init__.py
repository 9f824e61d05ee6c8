"""Media processing: what a file really is, its previews, and the rendition each network needs.

Pure file-in/file-out code with no Temporal, database or HTTP-server imports, so the activities,
the API's validation and the benchmark all call the same functions. ``media.types`` holds the
shared vocabulary (MediaInfo, MediaError, the per-network rules).
"""
