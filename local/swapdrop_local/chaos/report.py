"""The table `make chaos` prints (and writes to out/chaos/ as Markdown and JSON)."""

from __future__ import annotations

from collections.abc import Iterable

from swapdrop_local.chaos.harness import Figures

HEADER = (
    "scenario",
    "uploads",
    "submissions (requests/accepted)",
    "SUCCESS/FAILURE/REJECTED",
    "DLQ",
    "4xx/5xx/no-answer",
    "events per job (max/total)",
    "drain s",
    "verdict",
)


def row(figures: Figures) -> tuple[str, ...]:
    s = figures.statuses
    drain = "-" if figures.drain_seconds is None else f"{figures.drain_seconds:.1f}"
    verdict = figures.verdict
    if figures.peak_rss_mib is not None:
        verdict += f" (peak RSS {figures.peak_rss_mib:.0f} MiB)"
    return (
        figures.scenario,
        str(figures.uploads),
        f"{figures.submit_requests}/{figures.submissions}",
        f"{s.get('SUCCESS', 0)}/{s.get('FAILURE', 0)}/{s.get('REJECTED', 0)}",
        str(figures.dlq),
        f"{figures.http_4xx}/{figures.http_5xx}/{figures.no_answer}",
        f"{figures.events_max_per_job}/{figures.events_total}",
        drain,
        verdict,
    )


def markdown(results: Iterable[Figures]) -> str:
    results = list(results)
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row(f)) + " |" for f in results]
    broken = [f for f in results if f.violations]
    if broken:
        lines.append("")
        for figures in broken:
            for violation in figures.violations:
                lines.append(f"- {figures.scenario}: {violation}")
    return "\n".join(lines) + "\n"
