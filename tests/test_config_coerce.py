"""config._coerce checks a value against its field's declared type as a real type (typing.get_type_hints),
never by matching the text of the annotation."""

from __future__ import annotations

import dataclasses
from typing import List, Optional

import pytest

from asyncopt_mpi.config import SECTIONS, _coerce, _field_types
from asyncopt_mpi.errors import ConfigError


def test_every_declared_key_has_a_check_that_keeps_its_default():
    for section, declared in SECTIONS.items():
        types = _field_types(declared)
        for field in dataclasses.fields(declared):
            default = getattr(declared(), field.name)
            if field.name == "params" or default is None:
                continue
            assert _coerce(f"{section}.{field.name}", default, types[field.name]) == default, field.name


@pytest.mark.parametrize("kind, value, expected", [
    (Optional[List[str]], ["a", "b"], ["a", "b"]),  # text "typing.Optional[typing.List[str]]": no "list" in it
    (list[str] | None, ["a"], ["a"]),  # text "list[str] | None" is not "list[str]"
    (list[int], [1, 2], [1, 2]),  # items stay integers (a text match made every list a list of floats)
    (int | None, 3.0, 3),
    (float, 2, 2.0),
    (bool | str, "auto", "auto"),
])
def test_a_value_is_checked_against_the_real_type(kind, value, expected):
    assert repr(_coerce("section.key", value, kind)) == repr(expected)  # the types too: 3, not 3.0


@pytest.mark.parametrize("kind, value, message", [
    (Optional[List[str]], "a", "expected a list of strings"),
    (list[int], [1, "2"], "expected a list of numbers"),
    (list[int], [1.5], "expected an integer"),
    (int | None, True, "expected an integer"),
    (list[list[float]], [[0, 1, 2]], r"expected a list of \[worker, start, end, factor\] rows"),
])
def test_a_value_of_another_type_is_one_line_naming_the_key(kind, value, message):
    with pytest.raises(ConfigError, match=f"^section.key: {message}"):
        _coerce("section.key", value, kind)


@pytest.mark.parametrize("kind", [dict[str, int], tuple[int, int], int | float])
def test_a_type_without_a_check_is_a_bug_never_an_unchecked_value(kind):
    with pytest.raises(TypeError, match="section.key: no check for the declared type"):
        _coerce("section.key", {"x": 1}, kind)
