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
        min: 1               # optional: min, max, choices
        help: training epochs
        profiles: {smoke: 2, quick: 12, full: 60}   # or `default: 3` for all profiles

A value given by the user overrides its profile's value. Anything unknown,
misspelt, mistyped or out of range raises :class:`ParameterError` whose message
lists what is valid — before anything runs or is written.
"""
from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

PROFILES = ("smoke", "quick", "full")
TYPES = ("int", "float", "str", "bool", "list[int]", "list[float]", "list[str]")
#: names every chapter has, whatever its chapter.yml says
RESERVED = ("profile", "run_dir")


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

    def describe(self) -> str:
        rng = []
        if self.min is not None:
            rng.append(f">= {self.min}")
        if self.max is not None:
            rng.append(f"<= {self.max}")
        if self.choices is not None:
            rng.append(f"one of {list(self.choices)}")
        return f"{self.name} ({self.type}{', ' + ', '.join(rng) if rng else ''})"

    def check(self, value: Any) -> Any:
        """Return ``value`` coerced to this parameter's type, or raise ParameterError."""
        base, is_list = (self.type[5:-1], True) if self.type.startswith("list[") else (self.type, False)
        if is_list:
            if not isinstance(value, (list, tuple)):
                raise ParameterError(f"parameter {self.describe()} must be a list, got {value!r}")
            if not value:
                raise ParameterError(f"parameter {self.describe()} must not be empty")
            return [self._check_scalar(v, base) for v in value]
        return self._check_scalar(value, base)

    def _check_scalar(self, v: Any, base: str) -> Any:
        ok = {
            "int": isinstance(v, int) and not isinstance(v, bool),
            "float": isinstance(v, (int, float)) and not isinstance(v, bool),
            "str": isinstance(v, str),
            "bool": isinstance(v, bool),
        }[base]
        if not ok:
            raise ParameterError(f"parameter {self.describe()} got {v!r} of type {type(v).__name__}")
        if base == "float":
            v = float(v)
        if self.min is not None and v < self.min:
            raise ParameterError(f"parameter {self.describe()} got {v!r}, below its minimum {self.min}")
        if self.max is not None and v > self.max:
            raise ParameterError(f"parameter {self.describe()} got {v!r}, above its maximum {self.max}")
        if self.choices is not None and v not in self.choices:
            raise ParameterError(f"parameter {self.describe()} got {v!r}; valid: {list(self.choices)}")
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


def load_chapter(yml: Path) -> ChapterSpec:
    """Read and check one ``chapter.yml``."""
    try:
        raw = yaml.safe_load(yml.read_text())
    except yaml.YAMLError as exc:
        raise ParameterError(f"{yml} is not valid YAML: {exc}") from exc
    for key in ("name", "title", "notebook", "params"):
        if key not in raw:
            raise ParameterError(f"{yml} lacks the key {key!r}")
    params = {}
    for pname, p in (raw["params"] or {}).items():
        if pname in RESERVED:
            raise ParameterError(f"{yml}: parameter name {pname!r} is reserved")
        if p.get("type") not in TYPES:
            raise ParameterError(f"{yml}: parameter {pname!r} has type {p.get('type')!r}; valid: {TYPES}")
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
                         choices=tuple(p["choices"]) if "choices" in p else None)
        for pr in PROFILES:  # the declared defaults must pass their own validation
            spec.check(profiles[pr])
        params[pname] = spec
    notebook = yml.parent / raw["notebook"]
    if not notebook.is_file():
        raise ParameterError(f"{yml}: notebook {notebook} does not exist")
    timeout = raw.get("timeout", {})
    if isinstance(timeout, int):
        timeout = {pr: timeout for pr in PROFILES}
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
