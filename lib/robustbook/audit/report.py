"""The one-page report card of an audit: ``report.md``, ``report.html`` (self-contained) and ``figures/``.

Made from :attr:`robustbook.audit.AuditResult.record` only (the numbers of ``metrics.json``), so a card
can be redrawn from a saved ``metrics.json`` with :func:`write_report_from_record`. Figures: SROCC
against ε per attack family and direction with the worst case and its 95 % interval; the absolute
gain against ε; the per-image worst case at the largest ε (clean against attacked score).
"""
from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from robustbook.atomic import atomic_path

__all__ = ["write_report", "write_report_from_record", "figures", "markdown", "reading"]

_DIR_STYLE = {"up": "-", "down": "--"}


def _f(v: Any, spec: str = ".3f") -> str:
    return "–" if v is None else format(v, spec)


def _ci(ci) -> str:
    return "" if not ci else f" [{ci[0]:.3f}, {ci[1]:.3f}]"


def figures(record: dict, folder: Path) -> dict[str, Path]:
    """Draw the card's figures into ``folder`` (PNG); returns name → path."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from robustbook.plotting import PALETTE, use_style

    use_style()
    folder.mkdir(parents=True, exist_ok=True)
    eps = record["eps_255"]
    fams = record["families"]
    att = record["attacks"]
    out: dict[str, Path] = {}

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
    for ax, d in zip(axes, ("up", "down"), strict=True):
        for i, fam in enumerate(fams):
            ys = [att.get(f"{fam}-{d}-eps{e}", {}).get("srocc") for e in eps]
            ax.plot(eps, [float("nan") if v is None else v for v in ys], _DIR_STYLE[d], marker="o", ms=3,
                    color=PALETTE[i % len(PALETTE)], label=fam)
        w = [record["worst_case"][str(e)]["worst_srocc"] for e in eps]
        ax.plot(eps, [float("nan") if v is None else v for v in w], "k-", lw=2, label="worst case")
        cis = [record["worst_case"][str(e)]["rank"].get("srocc_ci") for e in eps]
        if all(cis):
            ax.fill_between(eps, [c[0] for c in cis], [c[1] for c in cis], color="k", alpha=0.12, lw=0)
        if record["clean"]["srocc"] is not None:
            ax.axhline(record["clean"]["srocc"], color="grey", lw=0.8, ls=":")
        ax.set(xscale="log", xticks=eps, xticklabels=[str(e) for e in eps], xlabel="ε (×1/255)",
               title=f"attacks that {'raise' if d == 'up' else 'lower'} the score")
    axes[0].set_ylabel("SROCC")
    axes[1].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    out["srocc_vs_eps"] = folder / "srocc_vs_eps.png"
    fig.savefig(out["srocc_vs_eps"], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(4.6, 3.0))
    for i, fam in enumerate(fams):
        for d in ("up", "down"):
            ys = [att.get(f"{fam}-{d}-eps{e}", {}).get("abs_gain") for e in eps]
            ax.plot(eps, [float("nan") if v is None else v for v in ys], _DIR_STYLE[d], marker="o", ms=3,
                    color=PALETTE[i % len(PALETTE)], label=fam if d == "up" else None)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set(xscale="log", xticks=eps, xticklabels=[str(e) for e in eps], xlabel="ε (×1/255)",
           ylabel="absolute gain (clean range)", title="score shift (solid: up, dashed: down)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    out["gain_vs_eps"] = folder / "gain_vs_eps.png"
    fig.savefig(out["gain_vs_eps"], dpi=110)
    plt.close(fig)

    e = str(max(eps))
    wc = record["worst_case"][e]
    fig, ax = plt.subplots(figsize=(4.6, 3.0))
    names = ["clean", *[k for k in wc["rank"]["wins"] if k != "clean"]]
    counts = [wc["rank"]["wins"][k] for k in names]
    labels = [k if k == "clean" else k.rsplit("-eps", 1)[0] for k in names]
    ax.barh(range(len(names)), counts, color=[PALETTE[6]] + [PALETTE[i % 6] for i in range(len(names) - 1)])
    ax.set(yticks=range(len(names)), yticklabels=labels, xlabel="images",
           title=f"whose attack is each image's worst case (ε={e}/255)")
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    out["worst_case"] = folder / "worst_case.png"
    fig.savefig(out["worst_case"], dpi=110)
    plt.close(fig)
    return out


def reading(record: dict) -> list[str]:
    """Sentences that read the card, generated from its numbers."""
    c, s = record["clean"], record["summary"]
    e_max = str(max(record["eps_255"]))
    w = record["worst_case"][e_max]
    out = []
    if c["srocc"] is not None:
        out.append(f"On {record['data']['n']} clean test images of {record['data']['name']} the model's SROCC is "
                   f"{c['srocc']:.3f}{_ci(c.get('srocc_ci'))}.")
    if w["worst_srocc"] is not None:
        drop = None if c["srocc"] is None else c["srocc"] - w["worst_srocc"]
        out.append(f"At ε = {e_max}/255 the worst case over the suite brings it to {w['worst_srocc']:.3f}"
                   + (f", a drop of {drop:.3f}" if drop is not None else "") + ".")
    e_min = str(min(record["eps_255"]))
    if record["worst_case"][e_min]["worst_srocc"] is not None:
        out.append(f"Even at ε = {e_min}/255 (each pixel moved by at most {e_min} grey level"
                   f"{'s' if e_min != '1' else ''}) the worst-case SROCC is "
                   f"{record['worst_case'][e_min]['worst_srocc']:.3f}.")
    if s["max_abs_gain"] is not None:
        out.append(f"The largest mean score shift of one attack is {s['max_abs_gain']:.3f} of the model's clean "
                   f"score range; the strongest family on SROCC is {s['strongest_family']}.")
    out.append(f"Verdict: **{record['verdict']}**." + (" " + " ".join(n[0].upper() + n[1:] + "." for n in
                                                                       record["notes"]) if record["notes"] else ""))
    return out


def _blocks(record: dict, figs: dict[str, str]) -> list[tuple[str, Any]]:
    c = record["clean"]
    m = record["model"]
    blocks: list[tuple[str, Any]] = [
        ("h1", f"Robustness report card: {m['label']}"),
        ("p", f"Suite {record['suite_version']}, profile **{record['profile']}**, data {record['data']['name']} "
              f"({record['data']['n']} test images, {' × '.join(map(str, record['data']['image_shape']))}); "
              f"{'full' if record['full_reference'] else 'no'}-reference model, "
              f"{'higher' if record['higher_is_better'] else 'lower'} score = better; EOT {record['eot']}; BPDA "
              f"{record['bpda'] or 'none'}; wall time {record['wall_time_s']:.1f} s."),
        ("p", " ".join(reading(record))),
        ("h2", "Clean agreement (95 % bootstrap intervals)"),
        ("table", (["SROCC", "PLCC", "KROCC"],
                   [[_f(c["srocc"]) + _ci(c.get("srocc_ci")), _f(c["plcc"]) + _ci(c.get("plcc_ci")),
                     _f(c["krocc"]) + _ci(c.get("krocc_ci"))]])),
        ("h2", "SROCC against ε"), ("img", figs.get("srocc_vs_eps")),
        ("h2", "Worst case per ε"),
        ("table", (["ε", "worst SROCC", "against the ranking", "raise: SROCC / gain", "lower: SROCC / gain",
                    "R-Score (worst)", "IR-Score (worst)"],
                   [[f"{e}/255", _f(w["worst_srocc"]), _f(w["rank"]["srocc"]) + _ci(w["rank"].get("srocc_ci")),
                     f"{_f(w['up']['srocc'])} / {_f(w['up']['abs_gain'])}",
                     f"{_f(w['down']['srocc'])} / {_f(w['down']['abs_gain'])}", _f(w["rank"]["r_score"], ".2f"),
                     _f(w["rank"]["ir_score"])] for e, w in record["worst_case"].items()])),
        ("img", figs.get("worst_case")),
        ("h2", "Checks"),
        ("table", (["check", "value", "status", "what it means"],
                   [[name, _f(v["value"], ".4g") if isinstance(v["value"], float) else str(v["value"]),
                     "**RED FLAG**" if v["flagged"] else ("ok" if v["value"] is not None else "n/a"), v["message"]]
                    for name, v in record["checks"]["checks"].items()])),
        ("h2", "Every attack"), ("img", figs.get("gain_vs_eps")),
        ("table", (["attack", "dir", "ε", "SROCC", "PLCC", "abs. gain", "R-Score", "IR-Score", "s", "evals/img"],
                   [[v["family"], v["direction"], f"{v['eps_255']}/255", _f(v["srocc"]), _f(v["plcc"]),
                     _f(v["abs_gain"]), _f(v["r_score"], ".2f"), _f(v["ir_score"]), f"{v['seconds']:.2f}",
                     f"{v['evals_per_image']:.0f}"] for v in record["attacks"].values()])),
        ("p", f"Data: {record['data']['note']}"),
    ]
    return blocks


def markdown(record: dict, figs: dict[str, str]) -> str:
    lines = []
    for kind, v in _blocks(record, figs):
        if kind == "h1":
            lines.append(f"# {v}\n")
        elif kind == "h2":
            lines.append(f"## {v}\n")
        elif kind == "p":
            lines.append(v + "\n")
        elif kind == "img" and v:
            lines.append(f"![{Path(v).stem}]({v})\n")
        elif kind == "table":
            head, rows = v
            lines.append("| " + " | ".join(head) + " |")
            lines.append("|" + "---|" * len(head))
            lines += ["| " + " | ".join(str(c).replace("|", "/") for c in r) + " |" for r in rows]
            lines.append("")
    return "\n".join(lines)


def _inline(text: str) -> str:
    out = html.escape(text)
    parts = out.split("**")
    return "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(parts))


def to_html(record: dict, figs: dict[str, str], folder: Path) -> str:
    body = []
    for kind, v in _blocks(record, figs):
        if kind in ("h1", "h2"):
            body.append(f"<{kind}>{html.escape(v)}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{_inline(v)}</p>")
        elif kind == "img" and v:
            data = base64.b64encode((folder / v).read_bytes()).decode()
            body.append(f'<img alt="{html.escape(Path(v).stem)}" src="data:image/png;base64,{data}">')
        elif kind == "table":
            head, rows = v
            red = ' class="flag"'
            trs = "".join("<tr>" + "".join(f"<td{red if 'RED FLAG' in str(c) else ''}>{_inline(str(c))}</td>"
                                           for c in r) + "</tr>" for r in rows)
            body.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + f"</tr>{trs}</table>")
    style = ("body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;font-size:13px;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 6px}"
             "th{background:#f2f2f2}td.flag{background:#fde2e2}img{max-width:100%}")
    title = html.escape(f"Report card: {record['model']['label']}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title><style>{style}</style>"
            f"</head><body>{''.join(body)}</body></html>\n")


def write_report_from_record(record: dict, folder: str | Path) -> dict[str, Path]:
    """Write ``report.md``, ``report.html`` and ``figures/*.png`` for a card's ``record`` into ``folder``."""
    folder = Path(folder)
    figs = {k: str(p.relative_to(folder)) for k, p in figures(record, folder / "figures").items()}
    paths = {"md": folder / "report.md", "html": folder / "report.html"}
    with atomic_path(paths["md"]) as tmp:
        tmp.write_text(markdown(record, figs))
    with atomic_path(paths["html"]) as tmp:
        tmp.write_text(to_html(record, figs, folder))
    return {**paths, **{k: folder / v for k, v in figs.items()}}


def write_report(result, folder: str | Path) -> dict[str, Path]:
    """The report card of an :class:`~robustbook.audit.AuditResult` (see :func:`write_report_from_record`)."""
    return write_report_from_record(json.loads(json.dumps(result.record)), folder)
