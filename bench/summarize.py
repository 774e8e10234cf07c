#!/usr/bin/env python3
"""Turn bench/run.sh's raw figures into the table it prints.

Each round ran idfit and every peer back to back, so the ratio that counts is
taken within a round (peer seconds / idfit seconds) and then the median over
rounds; that cancels drift a median of each side alone would keep. Round 0 is
the warm-up and is left out.

Usage: summarize.py RESULTS.tsv [TASK]
"""

import csv
import statistics
import sys
from collections import defaultdict
from pathlib import Path

# (form, peer): the least peer/idfit ratio idfit aims for, i.e. idfit taking at
# most 1/ratio of the peer's time.
RATIO_TARGETS = {
    ("oci-gzip", "bsdtar"): 2.0,  # idfit <= 0.5 x bsdtar
    ("oci-zstd", "bsdtar"): 1.25,  # idfit <= 0.8 x bsdtar
    ("docker-archive", "gnutar"): 4.0,  # idfit <= 0.25 x GNU tar -tv
}
IDFIT_RSS_TARGET_MIB = 64

NOTES = {
    "bsdtar": "bsdtar -tv | awk",
    "gnutar": "GNU tar -tv | awk",
    "tarfile": "python3 tarfile",
    "umoci": "umoci unpack --rootless",
    "docker-load": "docker load, remapped (until it fails)",
    "fix-tarfile": "python3 tarfile rewrite + pigz (bench/peer_fix_tarfile.py)",
    "fix-umoci": "umoci unpack + find -exec chown + umoci repack",
}


def load(path):
    # runs[form][tool][round] = (seconds, rss_kib, lines)
    runs = defaultdict(lambda: defaultdict(dict))
    with open(path, newline="") as file:
        for row in csv.DictReader(file, delimiter="\t"):
            if int(row["round"]) == 0:
                continue
            runs[row["form"]][row["tool"]][int(row["round"])] = (
                float(row["seconds"]),
                int(row["max_rss_kib"]),
                int(row["output_lines"]),
            )
    return runs


def ratio_cell(form, tool, rounds, idfit):
    target = RATIO_TARGETS.get((form, tool))
    target_text = f">= {target:.2f}x" if target else ""
    ratios = [rounds[r][0] / idfit[r][0] for r in rounds if r in idfit and idfit[r][0] > 0]
    if tool == "idfit" or not ratios:
        return "", target_text
    ratio = statistics.median(ratios)
    if target is None:
        return f"{ratio:.2f}x", ""
    verdict = "met" if ratio >= target else "MISSED"
    return f"{ratio:.2f}x", f"{target_text} {verdict}"


def rss_cell(tool, rounds):
    peak = max(rss for _, rss, _ in rounds.values()) / 1024
    if tool == "docker-load":
        return "n/a (daemon)", ""
    if tool != "idfit":
        return f"{peak:.1f} MiB", ""
    verdict = "met" if peak < IDFIT_RSS_TARGET_MIB else "MISSED"
    return f"{peak:.1f} MiB", f"< {IDFIT_RSS_TARGET_MIB} MiB {verdict}"


def main():
    runs = load(sys.argv[1])
    task = sys.argv[2] if len(sys.argv) > 2 else "check"
    print(f"idfit {task}")
    header = ("form", "tool", "median", "peer/idfit", "target", "peak RSS", "target", "lines")
    rows = [header]
    order = ["idfit", *NOTES]
    for form, tools in runs.items():
        idfit = tools.get("idfit", {})
        for tool in sorted(tools, key=lambda tool: order.index(tool) if tool in order else 99):
            rounds = tools[tool]
            median = statistics.median(seconds for seconds, _, _ in rounds.values())
            ratio, ratio_target = ratio_cell(form, tool, rounds, idfit)
            rss, rss_target = rss_cell(tool, rounds)
            lines = statistics.median_low([lines for _, _, lines in rounds.values()])
            rows.append(
                (form, tool, f"{median:.3f} s", ratio, ratio_target, rss, rss_target, str(lines))
            )

    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )

    rounds = max(len(rounds) for tools in runs.values() for rounds in tools.values())
    print(
        f"\nmedian of {rounds} rounds; peer/idfit is the median of per-round ratios "
        "(higher is better for idfit); lines = lines of output (findings for the list peers)"
    )
    if "docker-archive" in runs:
        print(
            "on docker-archive the list peers read layer files extracted beforehand; "
            "idfit reads the archive"
        )
    shown = {tool for tools in runs.values() for tool in tools}
    for tool, note in NOTES.items():
        if tool in shown:
            print(f"  {tool:<12} {note}")
    print_noverify_targets(runs)
    print_outputs(Path(sys.argv[1]))


def print_noverify_targets(runs):
    """The ratio targets again, against idfit without layer hashing, where it ran."""
    lines = []
    for (form, peer), target in RATIO_TARGETS.items():
        tools = runs.get(form, {})
        if "idfit-noverify" not in tools or peer not in tools:
            continue
        ratio, verdict = ratio_cell(form, peer, tools[peer], tools["idfit-noverify"])
        lines.append(f"  {form:<15} {peer:<8} {ratio}  {verdict}")
    if lines:
        print("\nthe same targets against idfit --no-verify (peer/idfit-noverify):")
        print("\n".join(lines))


def print_outputs(results):
    """The fix outputs' growth and load verdicts, when run.sh recorded them."""
    outputs = results.with_name(results.stem + "-outputs.tsv")
    if not outputs.exists():
        return
    print("\nfixed image: growth over the source, and whether the remapped dockerd loads it")
    with open(outputs, newline="") as file:
        for row in csv.DictReader(file, delimiter="\t"):
            growth = int(row["growth_bytes"])
            print(f"  {row['form']:<9} {row['tool']:<12} {growth:+,} bytes  loads: {row['loads']}")


if __name__ == "__main__":
    main()
