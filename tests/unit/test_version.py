"""One version: pyproject.toml's, everywhere it is written (``make manifests`` keeps them)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

import pgparity
from pgparity import config

ROOT = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_the_package_says_pyprojects_version() -> None:
    assert pgparity.__version__ == VERSION
    assert pgparity.IMAGE.endswith(f":{VERSION}")
    assert config.Settings().image == pgparity.IMAGE


def test_the_chart_and_its_default_image() -> None:
    chart = yaml.safe_load((ROOT / "charts/pgparity/Chart.yaml").read_text())
    values = yaml.safe_load((ROOT / "charts/pgparity/values.yaml").read_text())
    assert chart["version"] == VERSION
    assert chart["appVersion"] == VERSION
    assert values["image"] == pgparity.IMAGE


def test_deploy_runs_this_version() -> None:
    images = re.findall(
        r"ghcr\.io/pgparity/pgparity:[^\s\"']+", (ROOT / "deploy/operator.yaml").read_text()
    )
    assert images
    assert set(images) == {pgparity.IMAGE}
