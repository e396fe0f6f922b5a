"""pgparity: staging that predicts production for PostgreSQL schema migrations."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path


def _version() -> str:
    """pyproject.toml's version: from the installed distribution's metadata, or — in a source
    checkout that was never installed — from pyproject.toml itself. One source for the CLI,
    the archives, the image tag, the chart and deploy/ (``make manifests``)."""
    try:
        return metadata.version("pgparity")
    except metadata.PackageNotFoundError:
        pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
        return str(tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"])


__version__ = _version()
IMAGE = f"ghcr.io/pgparity/pgparity:{__version__}"  # the image this version is released as
