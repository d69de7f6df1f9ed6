"""Model manifests: a model as a set of files.

This package owns what a manifest is (`values`: entries of relative path → SHA-256,
size and role, the canonical JSON and the manifest's own content hash, and the checks
that treat every manifest as hostile input), how a graph's external-data locations
are matched against a manifest (`graph`), how ``webmodels import`` turns a model file
with its external data, or a folder, into one manifest (`importing`), and how a
session's files are chosen from a manifest or from files a page names (`selection`),
how ``webmodels pull`` of several URLs or of a catalog entry with ``files`` stores one
(`pulling`), and how a manifest, or a file one names, is removed (`removal`).
The index rows live in `store/manifests.py`; docs/manifests.md documents the format.
"""
