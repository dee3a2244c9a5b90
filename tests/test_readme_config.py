"""README's configuration table lists every config key, and its environment table every variable the code reads."""

from __future__ import annotations

import dataclasses
import pathlib
import re

from asyncopt_mpi.config import SECTIONS

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "asyncopt_mpi"
# Prefixes of the environment variables launchers, Slurm and this package set.
ENVIRONMENT = re.compile(r"""["']((?:ASYNCOPT|SLURM|PMI|PMIX|OMPI|MPI|MV2|HYDRA)_[A-Z0-9_]+)["']""")


def readme() -> str:
    return (ROOT / "README.md").read_text(encoding="utf-8")


def section_rows(text: str) -> dict[str, str]:
    """`[section]` -> the text of its row in the configuration table."""
    rows = {}
    for line in text.splitlines():
        found = re.match(r"\|\s*`\[(\w+)\]`\s*\|(.*)\|\s*$", line)
        if found:
            rows[found.group(1)] = found.group(2)
    return rows


def test_every_config_key_is_in_the_readme_table():
    rows = section_rows(readme())
    missing = []
    for section, cls in SECTIONS.items():
        assert section in rows, f"README's configuration table has no row for [{section}]"
        named = set(re.findall(r"`(\w+)`", rows[section]))
        missing += [f"{section}.{f.name}" for f in dataclasses.fields(cls) if f.name != "params" and f.name not in named]
    assert not missing, f"config keys missing from README's configuration table: {', '.join(missing)}"
    extra = set(rows) - set(SECTIONS)
    assert not extra, f"README's table has sections the config does not accept: {extra}"


def test_every_environment_variable_the_code_reads_is_documented():
    used = set()
    for path in PACKAGE.rglob("*.py"):
        used |= set(ENVIRONMENT.findall(path.read_text(encoding="utf-8")))
    assert "ASYNCOPT_PROGRESS_SECONDS" in used and "SLURM_ARRAY_TASK_ID" in used  # the scan finds them
    text = readme()
    table = text[text.index("| variable | effect |"):]
    table = table[: table.index("\n\n")]
    missing = sorted(name for name in used if f"`{name}`" not in table)
    assert not missing, f"environment variables read by the code but missing from README's table: {', '.join(missing)}"
