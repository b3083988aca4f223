"""Chapter parameters: validation with messages that list what is valid."""
from __future__ import annotations

from pathlib import Path

import pytest

from robustbook.params import ParameterError, discover, find_chapter, load_chapter, params_hash

BOOK = Path(__file__).resolve().parents[1] / "book"


@pytest.fixture(scope="module")
def chapters():
    return discover(BOOK)


def test_every_chapter_declares_valid_defaults(chapters):
    assert "attacks" in chapters
    for spec in chapters.values():
        for profile in ("smoke", "quick", "full"):
            spec.resolve(profile)  # the defaults pass their own validation


def test_misspelt_parameter_names_the_closest(chapters):
    with pytest.raises(ParameterError, match="did you mean 'epochs'"):
        chapters["attacks"].resolve("smoke", {"epcohs": 3})


@pytest.mark.parametrize("value,match", [("3", "got '3' of type str"), (0, "below its minimum"),
                                         (2.5, "of type float"), (True, "of type bool")])
def test_wrong_type_or_range(chapters, value, match):
    with pytest.raises(ParameterError, match=match):
        chapters["attacks"].resolve("smoke", {"epochs": value})


def test_choices_and_lists(chapters):
    spec = chapters["attacks"]
    with pytest.raises(ParameterError, match="valid: \\['bundled-iqa', 'koniq10k'\\]"):
        spec.resolve("smoke", {"dataset": "live"})
    assert spec.resolve("smoke", {"eps_list": [1, 2]})["eps_list"] == [1.0, 2.0]
    with pytest.raises(ParameterError, match="must be a list"):
        spec.resolve("smoke", {"eps_list": 3})


def test_unknown_profile_and_chapter(chapters):
    with pytest.raises(ParameterError, match="did you mean 'quick'"):
        chapters["attacks"].resolve("quik")
    with pytest.raises(ParameterError, match="did you mean 'attacks'"):
        find_chapter(chapters, "atacks")


def test_override_changes_hash(chapters):
    spec = chapters["attacks"]
    a = params_hash("smoke", spec.resolve("smoke"))
    b = params_hash("smoke", spec.resolve("smoke", {"epochs": 4}))
    assert a != b and a == params_hash("smoke", spec.resolve("smoke"))


def test_bad_chapter_yml(tmp_path):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "c.ipynb").write_text("{}")
    yml = tmp_path / "c" / "chapter.yml"
    yml.write_text("name: c\ntitle: C\nnotebook: c.ipynb\nparams:\n  n: {type: integer, default: 1}\n")
    with pytest.raises(ParameterError, match="has type 'integer'"):
        load_chapter(yml)
    yml.write_text("name: c\ntitle: C\nnotebook: c.ipynb\nparams:\n  n: {type: int, min: 2, default: 1}\n")
    with pytest.raises(ParameterError, match="below its minimum"):
        load_chapter(yml)


def test_parameters_cell_declares_exactly_the_chapter_parameters(chapters):
    import ast

    import nbformat

    for spec in chapters.values():
        nb = nbformat.read(spec.notebook, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert "parameters" in code[0].metadata.get("tags", []), f"{spec.name}: first code cell is not tagged"
        names = [t.id for node in ast.parse(code[0].source).body if isinstance(node, ast.Assign) for t in node.targets]
        assert names[:2] == ["profile", "run_dir"], f"{spec.name}: parameters cell must start with profile, run_dir"
        assert sorted(names[2:]) == sorted(spec.params), f"{spec.name}: parameters cell and chapter.yml differ"
        assert all(c.get("outputs", []) == [] for c in code), f"{spec.name}: commit notebooks without outputs"
