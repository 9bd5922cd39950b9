"""Nested settings with flat names: paths, copies, files (vmoer_ppl/settings.py)."""

from dataclasses import dataclass

import pytest

from vmoer_ppl.settings import (
    flat_paths,
    flat_values,
    from_dict,
    leaf_field,
    opt,
    section,
    to_dict,
    with_values,
)


@dataclass
class Inner:
    steps: int = opt(3, "steps", flag="inner_steps")
    names: tuple[str, ...] = opt(("a",), "names")
    scratch: str | None = opt(None, "set per call", runtime=True)


@dataclass
class Frozen:
    width: int = 4


@dataclass
class Outer:
    seed: int = opt(0, "seed")
    inner: Inner = section(Inner)
    frozen: Frozen = section(Frozen, flags=False)


def test_flat_names_map_to_paths_runtime_and_unflagged_sections_left_out():
    assert flat_paths(Outer()) == {
        "seed": ("seed",),
        "inner_steps": ("inner", "steps"),
        "names": ("inner", "names"),
    }
    f, hint = leaf_field(Outer(), ("inner", "names"))
    assert f.metadata["help"] == "names" and hint == tuple[str, ...]


def test_two_leaves_with_one_flat_name_are_refused():
    @dataclass
    class Clash:
        steps: int = opt(1, "steps", flag="inner_steps")
        inner: Inner = section(Inner)

    with pytest.raises(TypeError, match="share the flat name 'inner_steps'"):
        flat_paths(Clash())


def test_with_values_copies_the_sections_it_changes():
    base = Outer()
    new = with_values(base, {"inner_steps": 9, "seed": 2})
    assert (new.inner.steps, new.seed, base.inner.steps) == (9, 2, 3)
    assert new.frozen is base.frozen
    with pytest.raises(ValueError, match=r"unknown settings \['scratch'\]"):
        with_values(base, {"scratch": "x"})  # runtime: not a setting


def test_to_dict_nests_and_leaves_runtime_out_and_from_dict_reads_both_forms():
    cfg = with_values(Outer(), {"inner_steps": 5, "names": ("b", "c")})
    raw = to_dict(cfg)
    assert raw == {"seed": 0, "inner": {"steps": 5, "names": ("b", "c")}, "frozen": {"width": 4}}
    nested = {"seed": 0, "inner": {"steps": 5, "names": ["b", "c"]}, "frozen": {"width": 4}}
    assert from_dict(Outer(), nested) == cfg  # lists (JSON) back to tuples
    assert from_dict(Outer(), {"inner_steps": 5, "names": ["b", "c"]}) == cfg  # flat
    assert from_dict(Outer(), {"frozen": {"width": 7}}).frozen.width == 7
    assert flat_values(cfg) == {"seed": 0, "inner_steps": 5, "names": ("b", "c")}


@pytest.mark.parametrize(
    "raw, name",
    [
        ({"inner": {"stepz": 1}}, "inner.stepz"),
        ({"inner": {"scratch": "x"}}, "inner.scratch"),
        ({"frozen": {"height": 1}}, "frozen.height"),
        ({"sed": 1}, "sed"),
    ],
)
def test_from_dict_names_the_unknown_setting(raw, name):
    with pytest.raises(ValueError, match=rf"unknown settings \['{name}'\]"):
        from_dict(Outer(), raw)
