"""Chapter parameters: their declaration (``chapter.yml``), profiles and validation.

Each chapter folder ``book/<name>/`` holds ``chapter.yml``::

    name: attacks
    title: Attacking an image quality model
    notebook: attacks.ipynb
    timeout: {smoke: 300, quick: 1800, full: 36000}   # seconds per cell
    draft: false     # true: work in progress, runnable by hand but kept out of _toc.yml and the tests
    params:
      epochs:
        type: int            # int, float, str, bool, list[int], list[float], list[str]
        min: 1               # optional constraints, see below
        help: training epochs
        profiles: {smoke: 2, quick: 12, full: 60}   # or `default: 3` for all profiles

A value given by the user overrides its profile's value. Anything unknown,
misspelt, mistyped or out of range raises :class:`ParameterError` whose message
lists what is valid — before anything runs or is written. The declared defaults
must pass the same checks when ``chapter.yml`` is loaded.

Constraints (all optional)
--------------------------
On a number, or on **each item** of a list (``list[int]``, ``list[float]``,
``list[str]``):

``min`` / ``max``
    inclusive bounds.
``exclusive_min`` / ``exclusive_max``
    strict bounds: ``exclusive_min: 0`` means "> 0" (e.g. budgets drawn on a
    log axis, learning rates).
``choices``
    the valid values (strings mostly).
``multiple_of``
    an int must be a multiple of it (e.g. a width that an architecture divides
    by 4).
``sentinel``
    one value outside the range that is valid too, with a meaning of its own
    (``sentinel: 0`` with ``min: 10``: "0 = all, else at least 10").

On a list as a whole (a list is never empty):

``min_length`` / ``max_length``
    how many items it may have.
``unique: true``
    no item twice.
``increasing: true``
    items strictly increasing (implies unique).
``subset_of: <parameter>``
    every item is also an item of that other list parameter (checked once all
    values are known).

Whatever the declaration, values are also checked against what the code can
take at all:

* a ``float`` is finite: NaN and ±infinity are refused (every comparison with
  NaN is false, so a NaN would pass any range);
* an ``int`` lies in -2**63 .. 2**63-1 (what torch and NumPy hold); seeds
  declare ``min: 0, max: 4294967295`` (= 2**32-1, what NumPy's seeding takes);
* a numeric **string** given to an ``int`` or ``float`` parameter is read as a
  number (``"1e-3"``, which YAML 1.1 leaves as text, becomes 0.001; ``"12"``
  becomes 12 for an ``int``), so ``-p lr 1e-3`` on the command line and a string
  injected by papermill both work. Strings given to ``str`` parameters stay
  strings.
"""
from __future__ import annotations

import difflib
import hashlib
import json
import math
import numbers
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PROFILES = ("smoke", "quick", "full")
TYPES = ("int", "float", "str", "bool", "list[int]", "list[float]", "list[str]")
#: names every chapter has, whatever its chapter.yml says
RESERVED = ("profile", "run_dir")
#: the range of an ``int`` whatever its declaration (int64: what torch and NumPy hold)
INT_MIN, INT_MAX = -2**63, 2**63 - 1
#: the range a seed declares (NumPy's legacy seeding and scikit-learn take 0 .. 2**32-1)
SEED_MIN, SEED_MAX = 0, 2**32 - 1
#: keys a parameter declaration may have
DECLARATION_KEYS = ("type", "help", "default", "profiles", "min", "max", "exclusive_min", "exclusive_max",
                    "choices", "multiple_of", "sentinel", "min_length", "max_length", "unique", "increasing",
                    "subset_of")
_LIST_ONLY = ("min_length", "max_length", "unique", "increasing", "subset_of")
_NUMERIC_ONLY = ("min", "max", "exclusive_min", "exclusive_max")
_INT_LITERAL = re.compile(r"[+-]?[0-9]{1,4000}", re.ASCII)
_FLOAT_LITERAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", re.ASCII)
_NON_FINITE_WORDS = {"nan", "inf", "infinity"}


def _show(v: Any, limit: int = 60) -> str:
    """``repr(v)``, shortened in the middle when long (a 4000-digit number stays readable)."""
    try:
        r = repr(v)
    except ValueError:  # an int too long for str() (Python's 4300-digit limit)
        return f"an integer of {int(v.bit_length() * 0.30103) + 1} digits"
    return r if len(r) <= limit else f"{r[:limit // 2]}...{r[-10:]} ({len(r)} characters)"


class ParameterError(ValueError):
    """A chapter or parameter given by the user is not valid; the message says what is."""


@dataclass(frozen=True)
class ParamSpec:
    name: str
    type: str
    profiles: dict[str, Any]
    help: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple | None = None
    exclusive_min: float | None = None
    exclusive_max: float | None = None
    multiple_of: int | None = None
    sentinel: Any = None
    min_length: int | None = None
    max_length: int | None = None
    unique: bool = False
    increasing: bool = False
    subset_of: str | None = None

    @property
    def base(self) -> str:
        """The type of the value, or of each item of a list."""
        return self.type[5:-1] if self.is_list else self.type

    @property
    def is_list(self) -> bool:
        return self.type.startswith("list[")

    def valid_values(self) -> str:
        """What is valid, in words: ``"> 0.0, <= 1.0"``; ``""`` when anything of the type is."""
        rng = []
        if self.min is not None:
            rng.append(f">= {self.min}")
        if self.exclusive_min is not None:
            rng.append(f"> {self.exclusive_min}")
        if self.max is not None:
            rng.append(f"<= {self.max}")
        if self.exclusive_max is not None:
            rng.append(f"< {self.exclusive_max}")
        if self.multiple_of is not None:
            rng.append(f"a multiple of {self.multiple_of}")
        if self.sentinel is not None and rng:
            rng = [f"{self.sentinel!r} or " + rng[0]] + rng[1:]
        if self.choices is not None:
            rng.append(f"one of {list(self.choices)}")
        if self.is_list:
            if rng:
                rng = ["each item " + rng[0]] + rng[1:]
            if self.min_length is not None:
                rng.append(f"at least {self.min_length} items")
            if self.max_length is not None:
                rng.append(f"at most {self.max_length} items")
            if self.increasing:
                rng.append("strictly increasing")
            elif self.unique:
                rng.append("no item twice")
            if self.subset_of is not None:
                rng.append(f"items among {self.subset_of}")
        return ", ".join(rng)

    def describe(self) -> str:
        rng = self.valid_values()
        return f"{self.name} ({self.type}{', ' + rng if rng else ''})"

    def check(self, value: Any) -> Any:
        """Return ``value`` coerced to this parameter's type, or raise ParameterError."""
        if not self.is_list:
            return self._check_scalar(value, self.base)
        if not isinstance(value, (list, tuple)):
            raise ParameterError(f"parameter {self.describe()} must be a list, got {value!r}")
        if not value:
            raise ParameterError(f"parameter {self.describe()} must not be empty")
        if self.min_length is not None and len(value) < self.min_length:
            raise ParameterError(f"parameter {self.describe()} got {len(value)} item(s) {list(value)!r}; "
                                 f"it needs at least {self.min_length}")
        if self.max_length is not None and len(value) > self.max_length:
            raise ParameterError(f"parameter {self.describe()} got {len(value)} items; it takes at most "
                                 f"{self.max_length}")
        out = [self._check_scalar(v, self.base) for v in value]
        if self.increasing and any(b <= a for a, b in zip(out, out[1:], strict=False)):
            raise ParameterError(f"parameter {self.describe()} got {out!r}; its items must be strictly increasing")
        if self.unique and len(set(out)) != len(out):
            twice = sorted({v for v in out if out.count(v) > 1}, key=str)
            raise ParameterError(f"parameter {self.describe()} got {out!r}, which repeats {twice}; "
                                 f"give each item once")
        return out

    @staticmethod
    def _coerce(v: Any, base: str) -> Any:
        """A numeric string, or a NumPy number, as the Python number it is (int/float parameters only)."""
        if base not in ("int", "float") or isinstance(v, bool):
            return v
        if isinstance(v, str):
            text = v.strip()
            if base == "int" and _INT_LITERAL.fullmatch(text):
                return int(text)
            if base == "float" and _FLOAT_LITERAL.fullmatch(text):
                return float(text)
            if base == "float" and text.lower().lstrip("+-.") in _NON_FINITE_WORDS:
                return float(text.replace(".", ""))
            return v
        if base == "int" and isinstance(v, numbers.Integral) and not isinstance(v, int):
            return int(v)
        if base == "float" and isinstance(v, numbers.Real) and not isinstance(v, (int, float)):
            return float(v)
        return v

    def _check_scalar(self, v: Any, base: str) -> Any:
        v = self._coerce(v, base)
        ok = {
            "int": isinstance(v, int) and not isinstance(v, bool),
            "float": isinstance(v, (int, float)) and not isinstance(v, bool),
            "str": isinstance(v, str),
            "bool": isinstance(v, bool),
        }[base]
        if not ok:
            what = "a whole number" if base == "int" else "a number" if base == "float" else f"a {base}"
            raise ParameterError(f"parameter {self.describe()} got {_show(v)} of type {type(v).__name__}; "
                                 f"it takes {what}")
        if base == "float":
            try:
                v = float(v)
            except OverflowError:
                v = math.inf if v > 0 else -math.inf
            if not math.isfinite(v):
                rng = self.valid_values()
                raise ParameterError(f"parameter {self.describe()} got {_show(v)}, which is not a finite number; "
                                     f"valid: a finite number{' ' + rng if rng else ''}")
        if self.sentinel is not None and v == self.sentinel:
            return v
        if self.min is not None and v < self.min:
            raise ParameterError(f"parameter {self.describe()} got {_show(v)}, below its minimum {self.min}")
        if self.exclusive_min is not None and not v > self.exclusive_min:
            raise ParameterError(f"parameter {self.describe()} got {_show(v)}; it must be greater than "
                                 f"{self.exclusive_min}")
        if self.max is not None and v > self.max:
            raise ParameterError(f"parameter {self.describe()} got {_show(v)}, above its maximum {self.max}")
        if self.exclusive_max is not None and not v < self.exclusive_max:
            raise ParameterError(f"parameter {self.describe()} got {_show(v)}; it must be less than "
                                 f"{self.exclusive_max}")
        if base == "int" and not INT_MIN <= v <= INT_MAX:
            raise ParameterError(f"parameter {self.describe()} got {_show(v)}, outside the range of a 64-bit integer "
                                 f"(what torch and NumPy hold)")
        if self.multiple_of is not None and v % self.multiple_of:
            raise ParameterError(f"parameter {self.describe()} got {_show(v)}, not a multiple of {self.multiple_of}")
        if self.choices is not None and v not in self.choices:
            raise ParameterError(f"parameter {self.describe()} got {_show(v)}; valid: {list(self.choices)}")
        return v


@dataclass(frozen=True)
class ChapterSpec:
    name: str
    title: str
    folder: Path
    notebook: Path
    params: dict[str, ParamSpec]
    timeout: dict[str, int] = field(default_factory=dict)
    draft: bool = False

    def resolve(self, profile: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The full parameter set of a run: the profile's values with ``overrides`` applied."""
        if profile not in PROFILES:
            raise ParameterError(f"unknown profile {profile!r}{_closest(profile, PROFILES)}; valid: {list(PROFILES)}")
        overrides = dict(overrides or {})
        for name in overrides:
            if name not in self.params:
                raise ParameterError(
                    f"chapter {self.name!r} has no parameter {name!r}{_closest(name, self.params)}; "
                    f"valid: {', '.join(p.describe() for p in self.params.values())}")
        out = {}
        for name, spec in self.params.items():
            value = overrides[name] if name in overrides else spec.profiles[profile]
            out[name] = spec.check(value)
        check_relations(self.params, out)
        return out

    def cell_timeout(self, profile: str) -> int:
        return int(self.timeout.get(profile, 3600))


def params_hash(profile: str, params: Mapping[str, Any]) -> str:
    """A short, stable hash of a run's profile and parameters (names a run folder)."""
    blob = json.dumps({"profile": profile, **params}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:8]


def _closest(name: str, valid) -> str:
    m = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.5)
    return f" (did you mean {m[0]!r}?)" if m else ""


def check_relations(specs: Mapping[str, ParamSpec], values: Mapping[str, Any]) -> None:
    """Constraints between parameters (``subset_of``), once every value is known."""
    for name, spec in specs.items():
        if spec.subset_of is None:
            continue
        among = values[spec.subset_of]
        missing = [v for v in values[name] if v not in among]
        if missing:
            raise ParameterError(f"parameter {spec.describe()} got {values[name]!r}, but {missing} "
                                 f"{'is' if len(missing) == 1 else 'are'} not in {spec.subset_of} = {among!r}; "
                                 f"valid: items of {spec.subset_of}")


def _declaration_error(yml: Path, pname: str, p: Mapping[str, Any]) -> str | None:
    """Why the declaration ``p`` of parameter ``pname`` is not valid, or ``None``."""
    unknown = [k for k in p if k not in DECLARATION_KEYS]
    if unknown:
        return (f"{yml}: parameter {pname!r} has unknown key(s) {unknown}"
                f"{_closest(str(unknown[0]), DECLARATION_KEYS)}; valid: {list(DECLARATION_KEYS)}")
    typ = p.get("type")
    is_list, base = typ.startswith("list["), typ[5:-1] if typ.startswith("list[") else typ
    for key in _LIST_ONLY:
        if key in p and not is_list:
            return f"{yml}: parameter {pname!r} declares {key!r}, which only a list parameter takes"
    for key in _NUMERIC_ONLY:
        if key in p:
            if base not in ("int", "float"):
                return f"{yml}: parameter {pname!r} declares {key!r}, which only int and float parameters take"
            v = p[key]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                return f"{yml}: parameter {pname!r} declares {key}: {v!r}; it must be a finite number"
    if "multiple_of" in p and (base != "int" or isinstance(p["multiple_of"], bool)
                               or not isinstance(p["multiple_of"], int) or p["multiple_of"] < 1):
        return (f"{yml}: parameter {pname!r} declares multiple_of: {p['multiple_of']!r}; "
                f"an int parameter takes a positive int")
    for key in ("min_length", "max_length"):
        if key in p and (isinstance(p[key], bool) or not isinstance(p[key], int) or p[key] < 1):
            return f"{yml}: parameter {pname!r} declares {key}: {p[key]!r}; it must be a positive int"
    for key in ("unique", "increasing"):
        if key in p and not isinstance(p[key], bool):
            return f"{yml}: parameter {pname!r} declares {key}: {p[key]!r}; it must be true or false"
    if "choices" in p and not isinstance(p["choices"], list):
        return f"{yml}: parameter {pname!r} declares choices: {p['choices']!r}; it must be a list"
    return None


def load_chapter(yml: Path) -> ChapterSpec:
    """Read and check one ``chapter.yml``."""
    try:
        raw = yaml.safe_load(yml.read_text())
    except yaml.YAMLError as exc:
        raise ParameterError(f"{yml} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ParameterError(f"{yml} must be a mapping with the keys name, title, notebook, params")
    for key in ("name", "title", "notebook", "params"):
        if key not in raw:
            raise ParameterError(f"{yml} lacks the key {key!r}")
    params = {}
    for pname, p in (raw["params"] or {}).items():
        if pname in RESERVED:
            raise ParameterError(f"{yml}: parameter name {pname!r} is reserved")
        if not isinstance(p, dict):
            raise ParameterError(f"{yml}: parameter {pname!r} must be a mapping with type, help, default/profiles")
        if p.get("type") not in TYPES:
            raise ParameterError(f"{yml}: parameter {pname!r} has type {p.get('type')!r}; valid: {TYPES}")
        problem = _declaration_error(yml, pname, p)
        if problem:
            raise ParameterError(problem)
        if "profiles" in p:
            profiles = dict(p["profiles"])
            if set(profiles) != set(PROFILES):
                raise ParameterError(f"{yml}: parameter {pname!r} must give a value for each of {PROFILES}")
        elif "default" in p:
            profiles = {pr: p["default"] for pr in PROFILES}
        else:
            raise ParameterError(f"{yml}: parameter {pname!r} needs `default` or `profiles`")
        spec = ParamSpec(name=pname, type=p["type"], profiles=profiles, help=p.get("help", ""),
                         min=p.get("min"), max=p.get("max"),
                         choices=tuple(p["choices"]) if "choices" in p else None,
                         exclusive_min=p.get("exclusive_min"), exclusive_max=p.get("exclusive_max"),
                         multiple_of=p.get("multiple_of"), sentinel=p.get("sentinel"),
                         min_length=p.get("min_length"), max_length=p.get("max_length"),
                         unique=bool(p.get("unique", False)), increasing=bool(p.get("increasing", False)),
                         subset_of=p.get("subset_of"))
        for pr in PROFILES:  # the declared defaults must pass their own validation
            spec.check(profiles[pr])
        params[pname] = spec
    for spec in params.values():
        if spec.subset_of is not None:
            other = params.get(spec.subset_of)
            if other is None or other.type != spec.type:
                raise ParameterError(f"{yml}: parameter {spec.name!r} declares subset_of: {spec.subset_of!r}, "
                                     f"which must name another parameter of type {spec.type}")
    for pr in PROFILES:
        check_relations(params, {n: s.check(s.profiles[pr]) for n, s in params.items()})
    notebook = yml.parent / raw["notebook"]
    if not notebook.is_file():
        raise ParameterError(f"{yml}: notebook {notebook} does not exist")
    timeout = raw.get("timeout", {})
    if isinstance(timeout, int) and not isinstance(timeout, bool):
        timeout = {pr: timeout for pr in PROFILES}
    if not isinstance(timeout, dict) or any(
            pr not in PROFILES or isinstance(t, bool) or not isinstance(t, int) or t < 1 for pr, t in timeout.items()):
        raise ParameterError(f"{yml}: timeout {timeout!r} must be a positive int (seconds per cell) or a mapping "
                             f"of some of {list(PROFILES)} to positive ints")
    return ChapterSpec(name=raw["name"], title=raw["title"], folder=yml.parent, notebook=notebook,
                       params=params, timeout=dict(timeout), draft=bool(raw.get("draft", False)))


def discover(book_dir: Path) -> dict[str, ChapterSpec]:
    """Every chapter under ``book_dir`` (folders holding a ``chapter.yml``), by runner name."""
    out: dict[str, ChapterSpec] = {}
    for yml in sorted(Path(book_dir).glob("*/chapter.yml")):
        spec = load_chapter(yml)
        if spec.name in out:
            raise ParameterError(f"two chapters are named {spec.name!r}: {out[spec.name].folder} and {spec.folder}")
        out[spec.name] = spec
    return out


def find_chapter(chapters: Mapping[str, ChapterSpec], name: str) -> ChapterSpec:
    if name not in chapters:
        raise ParameterError(f"unknown chapter {name!r}{_closest(name, chapters)}; valid: {sorted(chapters)}")
    return chapters[name]
