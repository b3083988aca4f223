"""A robustness report card for any quality model: ``python -m robustbook audit`` (chapter "Auditing a quality model").

* :mod:`robustbook.audit.suite` — the fixed, versioned attack suite (:data:`SUITE_VERSION`,
  :func:`build_suite`, the profiles' sizes :data:`PROFILES`);
* :mod:`robustbook.audit.runner` — :func:`run_audit` → :class:`AuditResult` (clean agreement with
  intervals, per-attack SROCC/PLCC, absolute gain, R-Score, IR-Score, the per-image worst case,
  the checks and a verdict), resumable per attack;
* :mod:`robustbook.audit.loading` — models (``module:factory``, ``file.py:factory``, book models by
  name), weights, data (:func:`load_audit_data`), every bad input an :class:`AuditInputError`;
* :mod:`robustbook.audit.report` — the one-page report card (Markdown + HTML + figures);
* :mod:`robustbook.audit.cli` — the command line.
"""
from robustbook.audit.loading import (
    BOOK_MODELS,
    AuditData,
    AuditInputError,
    BookModel,
    check_model,
    load_audit_data,
    load_model,
    load_weights,
)
from robustbook.audit.runner import AIMS, AuditResult, run_audit
from robustbook.audit.suite import EPS_255, FAMILIES, PROFILES, SUITE_VERSION, AuditProfile, SuiteAttack, build_suite

__all__ = ["SUITE_VERSION", "EPS_255", "FAMILIES", "PROFILES", "AuditProfile", "SuiteAttack", "build_suite",
           "run_audit", "AuditResult", "AIMS", "AuditData", "AuditInputError", "BookModel", "BOOK_MODELS",
           "load_model", "load_weights", "load_audit_data", "check_model", "write_report"]


def write_report(result: AuditResult, folder, **kw):
    """See :func:`robustbook.audit.report.write_report` (imported lazily: it needs matplotlib)."""
    from robustbook.audit.report import write_report as _write

    return _write(result, folder, **kw)
