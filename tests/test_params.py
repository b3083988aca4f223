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


@pytest.mark.parametrize("value,match", [("three", "got 'three' of type str"), ("3.5", "got '3.5' of type str"),
                                         (0, "below its minimum"),
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


# -- hostile values (issue 10, item 5) ------------------------------------------------------------

def _cli(text):
    """A value as the command line reads it (``-p NAME VALUE``)."""
    from robustbook.run import _parse_value

    return _parse_value(text)


@pytest.mark.parametrize("text", [".nan", ".inf", "-.inf", "nan", "inf", "1e400"])
def test_non_finite_floats_are_refused(chapters, text):
    """Every comparison with NaN is false: a NaN must not slip through min/max."""
    with pytest.raises(ParameterError, match=r"not a finite number; valid: a finite number > 0.0, <= 1.0"):
        chapters["attacks"].resolve("smoke", {"lr": _cli(text)})
    with pytest.raises(ParameterError, match="not a finite number"):
        chapters["attacks"].resolve("smoke", {"eps_list": [1.0, _cli(text)]})
    with pytest.raises(ParameterError, match="not a finite number"):
        chapters["attacks"].resolve("smoke", {"lr": 10 ** 400})   # an int too large for a float


def test_numeric_strings_are_numbers_for_numeric_parameters(chapters):
    spec = chapters["attacks"]
    assert _cli("1e-3") == "1e-3"   # YAML 1.1 reads it as text: params.py must read it as a number
    assert spec.resolve("smoke", {"lr": _cli("1e-3")})["lr"] == 0.001
    assert spec.resolve("smoke", {"lr": " 5E-4 "})["lr"] == 0.0005
    assert spec.resolve("smoke", {"epochs": "12"})["epochs"] == 12
    assert spec.resolve("smoke", {"eps_list": _cli("[1e-1, 2]")})["eps_list"] == [0.1, 2.0]
    with pytest.raises(ParameterError, match="it takes a whole number"):
        spec.resolve("smoke", {"epochs": "1e3"})
    with pytest.raises(ParameterError, match="it takes a number"):
        spec.resolve("smoke", {"lr": "0x10"})
    # a str parameter keeps its string: "1e3" is not a data set, and is not turned into 1000.0
    with pytest.raises(ParameterError, match=r"got '1e3'; valid: \['bundled-iqa', 'koniq10k'\]"):
        spec.resolve("smoke", {"dataset": "1e3"})


def test_seeds_are_bounded_by_what_numpy_takes(chapters):
    import re

    import numpy as np

    from robustbook.params import SEED_MAX, SEED_MIN

    np.random.seed(SEED_MAX)                      # the declared range is exactly NumPy's
    with pytest.raises(ValueError, match=r"Seed must be between 0 and 2\*\*32 - 1"):
        np.random.seed(SEED_MAX + 1)
    seen = 0
    for spec in chapters.values():
        for p in spec.params.values():
            if re.fullmatch(r"seeds?(_.*)?", p.name) and p.base != "str":  # seeds_on names a data set
                seen += 1
                assert p.base == "int" and p.min == SEED_MIN and p.max == SEED_MAX, p.describe()
    assert seen >= 3
    with pytest.raises(ParameterError, match="above its maximum 4294967295"):
        chapters["attacks"].resolve("smoke", {"seed": _cli("99999999999999999999999")})
    with pytest.raises(ParameterError, match="above its maximum 4294967295"):
        chapters["neural_ode"].resolve("smoke", {"seeds": [0, 2 ** 32]})
    assert chapters["stnorm"].resolve("smoke", {"seed": SEED_MAX})["seed"] == SEED_MAX


def test_log_axis_budgets_and_step_sweeps(chapters):
    with pytest.raises(ParameterError, match="must be greater than 0.0"):
        chapters["attacks"].resolve("smoke", {"eps_list": _cli("[0]")})
    with pytest.raises(ParameterError, match="must be greater than 0.0"):
        chapters["stnorm"].resolve("smoke", {"fig1_eps": [0, 1]})
    with pytest.raises(ParameterError, match="must be greater than 0.0"):
        chapters["attacks"].resolve("smoke", {"lr": 0})
    with pytest.raises(ParameterError, match="at least 2"):   # the notebook reads steps_sweep[-2]
        chapters["attacks"].resolve("smoke", {"steps_sweep": [5]})
    for ch in ("attacks", "stnorm"):
        with pytest.raises(ParameterError, match="strictly increasing"):
            chapters[ch].resolve("smoke", {"steps_sweep": [10, 5]})
    with pytest.raises(ParameterError, match=r"repeats \[0\]"):
        chapters["neural_ode"].resolve("smoke", {"seeds": [0, 0]})
    # 0 = all test images, else enough for a correlation
    assert chapters["attacks"].resolve("smoke", {"n_test": 0})["n_test"] == 0
    with pytest.raises(ParameterError, match="below its minimum 10"):
        chapters["attacks"].resolve("smoke", {"n_test": 2})


def test_seeds_t34_must_be_among_seeds(chapters):
    spec = chapters["neural_ode"]
    assert spec.resolve("full", {"seeds_t34": [2]})["seeds_t34"] == [2]
    with pytest.raises(ParameterError, match=r"\[7\] is not in seeds = \[0, 1, 2\]"):
        spec.resolve("full", {"seeds_t34": [0, 7]})


def test_declared_widths_and_steps_are_what_the_models_take(chapters):
    """The constraints mirror the models: a refused value does break the model, an accepted one builds."""
    import torch

    from robustbook.models.odenet import odenet
    from robustbook.models.resnet_iqa import resnet_iqa

    ode = chapters["neural_ode"]
    with pytest.raises(ParameterError, match="not a multiple of 4"):
        ode.resolve("smoke", {"width": 6})
    with pytest.raises(ValueError, match="divisible by 4 for cifar10, got 6"):
        odenet("cifar10", "ode", width=6)
    for w in (4, 12):
        assert ode.resolve("smoke", {"width": w})["width"] == w
        odenet("cifar10", "ode", width=w)
        odenet("imgnet10", "ode", width=w)
    nfe = ode.params["nfe_step"]
    for step in nfe.choices:
        odenet("mnist", "shared_resnet", width=4, step_size=step)
    with pytest.raises(ParameterError, match="valid"):
        ode.resolve("smoke", {"nfe_step": 0.03})
    with pytest.raises(ValueError, match="t1 / step_size to be a positive integer"):
        odenet("mnist", "shared_resnet", width=4, step_size=0.03)

    st = chapters["stnorm"]
    with pytest.raises(ParameterError, match="not a multiple of 2"):
        st.resolve("smoke", {"width": 5})
    x = torch.rand(2, 3, 16, 16)
    with pytest.raises(ValueError, match="channel count 5 must be divisible by the block size U=2"):
        resnet_iqa("tiny", activation="lwta", width=5, stem_stride=1)(x)
    resnet_iqa("tiny", activation="lwta", width=st.resolve("smoke", {"width": 4})["width"], stem_stride=1)(x)


def test_notebook_path_validates_the_same_way(chapters):
    """chapter.start() resolves through params.py: a NaN injected by papermill is refused before anything runs."""
    from robustbook.chapter import start

    with pytest.raises(ParameterError, match="not a finite number"):
        start("attacks", {"profile": "smoke", "run_dir": None, "lr": float("nan")})
    with pytest.raises(ParameterError, match="must be greater than 0.0"):
        start("attacks", {"profile": "smoke", "run_dir": None, "eps_list": [0.0, 1.0]})


def _chapter(tmp_path, params_yaml):
    (tmp_path / "c").mkdir(exist_ok=True)
    (tmp_path / "c" / "c.ipynb").write_text("{}")
    yml = tmp_path / "c" / "chapter.yml"
    yml.write_text("name: c\ntitle: C\nnotebook: c.ipynb\nparams:\n" + params_yaml)
    return yml


def test_schema_features(tmp_path):
    spec = load_chapter(_chapter(tmp_path, """\
  a: {type: float, exclusive_min: 0, exclusive_max: 1, default: 0.5}
  b: {type: "list[int]", min: 1, min_length: 2, max_length: 3, increasing: true, default: [1, 2]}
  c: {type: "list[int]", min: 0, unique: true, default: [3, 1]}
  d: {type: "list[int]", min: 0, subset_of: c, default: [1]}
  e: {type: int, sentinel: 0, min: 10, multiple_of: 5, default: 0}
  s: {type: str, default: "x"}
"""))
    ok = spec.resolve("quick", {"a": "0.25", "b": [1, 5, 9], "c": [1, 2], "d": [2, 1], "e": 15, "s": "1e3"})
    assert ok == {"a": 0.25, "b": [1, 5, 9], "c": [1, 2], "d": [2, 1], "e": 15, "s": "1e3"}
    bad = [({"a": 0}, "greater than 0"), ({"a": 1}, "less than 1"), ({"b": [1]}, "at least 2"),
           ({"b": [1, 2, 3, 4]}, "at most 3"), ({"b": [2, 2]}, "strictly increasing"), ({"c": [1, 1]}, "repeats"),
           ({"d": [4]}, "not in c"), ({"e": 5}, "below its minimum 10"), ({"e": 12}, "not a multiple of 5"),
           ({"s": 3}, "of type int")]
    for override, match in bad:
        with pytest.raises(ParameterError, match=match):
            spec.resolve("quick", override)
    assert "0 or >= 10" in spec.params["e"].describe()


@pytest.mark.parametrize("decl,match", [
    ("{type: float, exclusve_min: 0, default: 1}",
     r"unknown key\(s\) \['exclusve_min'\] \(did you mean 'exclusive_min'"),
    ("{type: int, min_length: 2, default: 1}", "only a list parameter takes"),
    ("{type: str, min: 0, default: a}", "only int and float parameters take"),
    ("{type: float, min: .nan, default: 1}", "must be a finite number"),
    ("{type: float, multiple_of: 2, default: 1}", "multiple_of"),
    ("{type: 'list[int]', subset_of: nope, default: [1]}", "must name another parameter"),
    ("{type: float, exclusive_min: 0, default: 0}", "greater than 0"),
    ("{type: 'list[int]', increasing: true, default: [2, 1]}", "strictly increasing"),
])
def test_bad_declarations_are_refused(tmp_path, decl, match):
    with pytest.raises(ParameterError, match=match):
        load_chapter(_chapter(tmp_path, f"  n: {decl}\n"))


@pytest.mark.parametrize("timeout", ["-5", "abc", "{smoke: 0}", "{fast: 10}", "true"])
def test_bad_timeout_is_refused(tmp_path, timeout):
    yml = _chapter(tmp_path, "  n: {type: int, default: 1}\n")
    yml.write_text(yml.read_text() + f"timeout: {timeout}\n")
    with pytest.raises(ParameterError, match="timeout .* must be a positive int"):
        load_chapter(yml)
