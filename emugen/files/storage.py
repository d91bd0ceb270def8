"""Storage roots named by URL: which fsspec protocol a root names, and whether it is known."""

from __future__ import annotations


def protocol_of(root: str) -> str:
    from fsspec.utils import get_protocol

    return get_protocol(root)


def check_root(root: str) -> str:
    """The root as given, when fsspec knows its protocol (a ValueError naming it otherwise)."""
    from fsspec.registry import known_implementations, registry

    protocol = protocol_of(root)
    if protocol not in known_implementations and protocol not in registry:
        raise ValueError(
            f"got {root!r}: unknown storage protocol {protocol!r}; use a local path, "
            "file:///abs/path or an fsspec URL such as s3://bucket/prefix"
        )
    return root
