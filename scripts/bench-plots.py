#!/usr/bin/env python3
"""Plots tmuxgate-bench results as two hand-built SVG files (Python 3.11 stdlib only).

Reads the tool's JSON result lines (files on the command line, or stdin; any other line,
such as the tables and notes of a run without --json, is skipped) and writes to --out:

  echo-latency.svg           p50/p95/p99/max echo latency (log scale): the `echo` gateway
                             and bare control-mode cases, and `echo-load`'s cases if present
  memory-per-connection.svg  gateway RSS against connections (`idle` steps), with the
                             budget line baseline RSS + 10 KB x connections

    scripts/bench-plots.py docs/bench/echo.jsonl docs/bench/idle.jsonl
    target/release/tmuxgate-bench idle --json | scripts/bench-plots.py --out /tmp/plots
    scripts/bench-plots.py --check     # plots scripts/testdata/ into a temp dir, validates

The output is deterministic (no timestamps), so regenerated plots diff cleanly.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from xml.sax.saxutils import escape

REPO = Path(__file__).resolve().parent.parent
# A run's output as printed without --json: tables and notes (skipped) among the JSON lines.
FIXTURE = REPO / "scripts" / "testdata" / "bench-output.txt"
ECHO_SVG = "echo-latency.svg"
MEMORY_SVG = "memory-per-connection.svg"
# Issue 3's memory budget: 10 KB (decimal) per connection, 100 MB at 10,000 connections.
BUDGET_BYTES_PER_CONNECTION = 10_000
PERCENTILES = [("p50", "p50_us"), ("p95", "p95_us"), ("p99", "p99_us"), ("max", "max_us")]
# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
COLORS = ["#0072B2", "#E69F00", "#56B4E9", "#D55E00", "#009E73", "#CC79A7", "#999999"]
FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
WIDTH, HEIGHT = 880, 500


# ---------------------------------------------------------------- input

def read_rows(paths: list[str]) -> list[dict]:
    """Result objects from the JSON lines of `paths` ('-' or none: stdin)."""
    rows = []
    for path in paths or ["-"]:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        for number, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise SystemExit(f"bench-plots: {path}:{number}: not a JSON line: {e}")
            if isinstance(row, dict) and "scenario" in row and "case" in row:
                rows.append(row)
    return rows


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def echo_series(rows: list[dict]) -> list[tuple[str, list[float]]]:
    """(legend label, [p50, p95, p99, max] µs) per latency row of `echo` and `echo-load`;
    the overhead and ratio rows (no `n`, no `max_us`) are left out."""
    series, seen = [], {}
    for row in rows:
        if row["scenario"] not in ("echo", "echo-load") or not is_number(row.get("n")):
            continue
        values = [row.get(key) for _, key in PERCENTILES]
        if not all(is_number(v) and v > 0 for v in values):
            continue
        label = echo_label(row)
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            label += f", run {seen[label]}"
        series.append((label, values))
    return series


def echo_label(row: dict) -> str:
    n = f"n={row['n']:,}"
    if row["scenario"] == "echo":
        name = "gateway" if row["case"] == "gateway" else row["case"].replace("-", " ")
        return f"{name} (echo, {n})"
    if row["case"] == "load" and is_number(row.get("viewers")):
        load = f"{row['viewers']:,} viewers + {row.get('typing_sessions', 0)} sessions typing"
        return f"gateway, {load} (echo-load, {n})"
    return f"gateway, {row['case']} (echo-load, {n})"


Point = tuple[int, float, float | None]


def idle_runs(rows: list[dict]) -> list[list[Point]]:
    """(connections, gateway RSS MiB, growth KiB per connection) per `idle` run: a run
    starts at its baseline row. The tool computes the growth from KiB; it is recomputed
    from the rounded MiB only when missing."""
    runs: list[list[Point]] = []
    for row in rows:
        if row["scenario"] != "idle" or row["case"] not in ("baseline", "connections"):
            continue
        if row["case"] == "baseline" or not runs:
            runs.append([])
        if is_number(row.get("connections")) and is_number(row.get("gateway_rss_mib")):
            per = row.get("per_conn_kib")
            runs[-1].append((int(row["connections"]), float(row["gateway_rss_mib"]),
                             float(per) if is_number(per) else None))
    return [run for run in runs if len(run) >= 2 and run[0][0] == 0]


def idle_sessions(rows: list[dict]) -> int | None:
    for row in rows:
        if row["scenario"] == "idle" and row["case"] == "tmux-clients":
            return row.get("sessions")
    return None


# ---------------------------------------------------------------- SVG building blocks

class Svg:
    """An SVG document built element by element."""

    def __init__(self, width: int, height: int, title: str):
        self.parts = [
            '<?xml version="1.0" encoding="UTF-8"?>',
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="{FONT}">',
            f"<title>{escape(title)}</title>",
            f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
        ]

    def add(self, tag: str, text: str | None = None, **attrs) -> None:
        attributes = " ".join(f'{k.rstrip("_").replace("_", "-")}="{fmt(v)}"'
                              for k, v in attrs.items() if v is not None)
        if text is None:
            self.parts.append(f"<{tag} {attributes}/>")
        else:
            self.parts.append(f"<{tag} {attributes}>{escape(text)}</{tag}>")

    def text(self, x, y, text: str, size=12, anchor="start", fill="#222222", **attrs):
        self.add("text", text, x=x, y=y, font_size=size, text_anchor=anchor, fill=fill, **attrs)

    def line(self, x1, y1, x2, y2, stroke="#222222", width=1, **attrs):
        self.add("line", x1=x1, y1=y1, x2=x2, y2=y2, stroke=stroke, stroke_width=width, **attrs)

    def write(self, path: Path) -> None:
        path.write_text("\n".join(self.parts + ["</svg>"]) + "\n", encoding="utf-8")


def fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.1f}".rstrip("0").rstrip(".")
    return str(value)


def text_width(text: str, size: float) -> float:
    """Rough rendered width: no font metrics without a renderer."""
    return 0.6 * size * len(text)


def header(svg: Svg, title: str, subtitle: str) -> None:
    svg.text(WIDTH / 2, 28, title, size=18, anchor="middle", font_weight="bold")
    svg.text(WIDTH / 2, 50, subtitle, size=12, anchor="middle", fill="#555555")


def legend(svg: Svg, entries: list[tuple[str, str, str]], top: float) -> None:
    """Entries (label, colour, 'box' | 'line' | 'dash') in centred rows from `top`."""
    rows, row, used = [], [], 0.0
    for entry in entries:
        width = 22 + text_width(entry[0], 12) + 24
        if row and used + width > WIDTH - 40:
            rows.append((row, used))
            row, used = [], 0.0
        row.append((entry, width))
        used += width
    if row:
        rows.append((row, used))
    for i, (row, used) in enumerate(rows):
        x, y = (WIDTH - used) / 2, top + 18 * i
        for (label, color, kind), width in row:
            if kind == "box":
                svg.add("rect", x=x, y=y - 10, width=14, height=12, fill=color)
            else:
                svg.line(x, y - 4, x + 16, y - 4, stroke=color, width=2.5,
                         stroke_dasharray="6 4" if kind == "dash" else None)
            svg.text(x + 22, y, label)
            x += width


def log_ticks(low: float, high: float) -> list[float]:
    """1-2-5 ticks covering [low, high]."""
    ticks, exponent = [], math.floor(math.log10(low))
    while True:
        for m in (1, 2, 5):
            tick = m * 10.0 ** exponent
            if tick > high * 1.0001:
                return ticks
            ticks.append(tick)
        exponent += 1


def linear_ticks(high: float, count: int = 6) -> list[float]:
    """0 and nice steps (1, 2, 2.5 or 5 × 10^k) up to at least `high`."""
    raw = high / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [step * i for i in range(math.ceil(high / step - 1e-9) + 1)]


def micros(value: float) -> str:
    if value >= 1000:
        return f"{value / 1000:g} ms"
    return f"{value:g} µs"


# ---------------------------------------------------------------- echo latency

def plot_echo(series: list[tuple[str, list[float]]], rows: list[dict], path: Path) -> None:
    svg = Svg(WIDTH, HEIGHT, "tmuxgate echo latency")
    left, right, top, bottom = 80, WIDTH - 20, 70, HEIGHT - 110
    header(svg, "Keystroke echo latency", echo_subtitle(rows))
    values = [v for _, vs in series for v in vs]
    group = (right - left) / len(PERCENTILES)
    bar = min(48.0, group * 0.8 / len(series))
    # Headroom above the tallest bar for its value label (rotated when wider than a bar).
    widths = [text_width(value_label(v), 10) for v in values]
    headroom = max([w + 8 for w in widths if w > bar], default=16.0)
    low = 10 ** math.floor(math.log10(min(values) / 1.5))
    span = math.log(max(values) / low) * (bottom - top) / (bottom - top - headroom)
    high = low * math.exp(span)
    ticks = log_ticks(low, high)
    def y_of(v: float) -> float:
        return bottom - (bottom - top) * math.log(v / low) / math.log(high / low)
    decades_only = math.log10(high / low) > 3
    for tick in ticks:
        major = math.log10(tick).is_integer()
        if decades_only and not major:
            continue
        svg.line(left, y_of(tick), right, y_of(tick), stroke="#dddddd" if major else "#eeeeee")
        svg.text(left - 8, y_of(tick) + 4, micros(tick), size=11, anchor="end")
    for g, (name, _) in enumerate(PERCENTILES):
        start = left + group * g + (group - bar * len(series)) / 2
        for s, (_, vs) in enumerate(series):
            x, y = start + bar * s, y_of(vs[g])
            svg.add("rect", x=x + 1, y=y, width=bar - 2, height=bottom - y,
                    fill=COLORS[s % len(COLORS)])
            bar_value_label(svg, x + bar / 2, y, vs[g], bar)
        svg.text(left + group * (g + 0.5), bottom + 20, name, size=13, anchor="middle")
    axes(svg, left, right, top, bottom)
    svg.text(22, (top + bottom) / 2, "echo latency (log scale)", size=12, anchor="middle",
             transform=f"rotate(-90 22 {(top + bottom) / 2})")
    svg.text((left + right) / 2, bottom + 42, "percentile of the samples", anchor="middle")
    legend(svg, [(label, COLORS[i % len(COLORS)], "box") for i, (label, _) in enumerate(series)],
           bottom + 68)
    svg.write(path)


def value_label(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def bar_value_label(svg: Svg, x: float, y: float, value: float, bar: float) -> None:
    label = value_label(value)
    if text_width(label, 10) <= bar:
        svg.text(x, y - 4, label, size=10, anchor="middle", fill="#333333")
    else:
        svg.text(x + 3, y - 4, label, size=10, fill="#333333",
                 transform=f"rotate(-90 {fmt(x + 3)} {fmt(y - 4)})")


def echo_subtitle(rows: list[dict]) -> str:
    for row in rows:
        if row["scenario"] == "echo" and row["case"].startswith("overhead"):
            parts = [f"{name} {row[key]:+g}" for name, key in PERCENTILES
                     if is_number(row.get(key))]
            return f"bar labels in µs; gateway over bare control mode: {', '.join(parts)} µs"
    return "INPUT frame typed to its echo in an OUTPUT frame; bar labels in µs"


def axes(svg: Svg, left, right, top, bottom) -> None:
    svg.line(left, bottom, right, bottom, width=1.2)
    svg.line(left, top, left, bottom, width=1.2)


# ---------------------------------------------------------------- memory per connection

def plot_memory(runs: list[list[Point]], sessions: int | None, path: Path) -> None:
    svg = Svg(WIDTH, HEIGHT, "tmuxgate gateway memory per connection")
    left, right, top, bottom = 80, WIDTH - 130, 70, HEIGHT - 90
    base = runs[0][0][1]
    most = max(p[0] for run in runs for p in run)
    budget_mib = BUDGET_BYTES_PER_CONNECTION / 1024**2
    budget_end = base + budget_mib * most
    header(svg, "Gateway memory against idle connections", memory_subtitle(runs[0], sessions))
    x_ticks = linear_ticks(most)
    y_ticks = linear_ticks(max(budget_end, max(p[1] for run in runs for p in run)) * 1.05)
    def x_of(c: float) -> float:
        return left + (right - left) * c / x_ticks[-1]
    def y_of(mib: float) -> float:
        return bottom - (bottom - top) * mib / y_ticks[-1]
    for tick in y_ticks:
        svg.line(left, y_of(tick), right, y_of(tick), stroke="#e4e4e4")
        svg.text(left - 8, y_of(tick) + 4, f"{tick:g}", size=11, anchor="end")
    for tick in x_ticks:
        svg.line(x_of(tick), bottom, x_of(tick), bottom + 5)
        svg.text(x_of(tick), bottom + 20, f"{tick:,.0f}", size=11, anchor="middle")
    axes(svg, left, right, top, bottom)
    for i, run in enumerate(runs):
        points = " ".join(f"{fmt(x_of(c))},{fmt(y_of(r))}" for c, r, _ in run)
        svg.add("polyline", points=points, fill="none", stroke=run_color(i), stroke_width=2.5)
    # Over the measured line: the two nearly coincide at low counts.
    svg.line(x_of(0), y_of(base), x_of(most), y_of(budget_end), stroke="#D55E00", width=2,
             stroke_dasharray="7 5")
    svg.text(x_of(most) + 8, y_of(budget_end) - 6, f"{budget_end:.1f} MiB", size=11,
             fill="#D55E00")
    for i, run in enumerate(runs):
        for c, r, per in run:
            svg.add("circle", cx=x_of(c), cy=y_of(r), r=4, fill=run_color(i))
            if i == 0:
                point_label(svg, x_of(c) + 8, y_of(r), (c, r, per), base)
    svg.text(22, (top + bottom) / 2, "gateway RSS (MiB)", anchor="middle",
             transform=f"rotate(-90 22 {(top + bottom) / 2})")
    svg.text((left + right) / 2, bottom + 42, "idle read-only connections", anchor="middle")
    entries = [("gateway RSS (VmRSS)" + (f", run {i + 1}" if len(runs) > 1 else ""),
                run_color(i), "line")
               for i in range(len(runs))]
    entries.append(("budget: baseline + 10 KB × connections", "#D55E00", "dash"))
    legend(svg, entries, bottom + 66)
    svg.write(path)


def run_color(i: int) -> str:
    return [COLORS[0], COLORS[4], COLORS[5], COLORS[6]][i % 4]


def per_connection_kib(point: Point, base: float) -> float:
    connections, rss, per = point
    return per if per is not None else (rss - base) * 1024 / connections


def point_label(svg: Svg, x: float, y: float, point: Point, base: float) -> None:
    """RSS and growth per connection, below right of the point (the line rises to the
    right, so that corner is free)."""
    svg.text(x, y + 16, f"{point[1]:.1f} MiB", size=11)
    per = "baseline" if point[0] == 0 else f"{per_connection_kib(point, base):.2f} KiB/conn"
    svg.text(x, y + 29, per, size=10, fill="#666666")


def memory_subtitle(run: list[Point], sessions: int | None) -> str:
    base, (last, rss, _) = run[0][1], run[-1]
    where = f"idle scenario, {sessions} sessions" if sessions else "idle scenario"
    per_kib = per_connection_kib(run[-1], base)
    budget_kib = BUDGET_BYTES_PER_CONNECTION / 1024
    return (f"{where}: {last:,} connections add {rss - base:.1f} MiB, {per_kib:.2f} KiB "
            f"each (budget 10 KB = {budget_kib:.2f} KiB)")


# ---------------------------------------------------------------- main and --check

def write_plots(rows: list[dict], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    series = echo_series(rows)
    if series:
        plot_echo(series, rows, out / ECHO_SVG)
        written.append(out / ECHO_SVG)
    else:
        print(f"bench-plots: no echo/echo-load latency rows: {ECHO_SVG} not written",
              file=sys.stderr)
    runs = idle_runs(rows)
    if runs:
        plot_memory(runs, idle_sessions(rows), out / MEMORY_SVG)
        written.append(out / MEMORY_SVG)
    else:
        print(f"bench-plots: no idle baseline and step rows with gateway_rss_mib "
              f"(with --url, pass --pid): {MEMORY_SVG} not written", file=sys.stderr)
    return written


def check() -> int:
    """Plots the fixture into a temp dir and checks both SVGs parse and hold the data."""
    rows = read_rows([str(FIXTURE)])
    checks: list[tuple[str, bool]] = []
    with tempfile.TemporaryDirectory() as tmp:
        written = write_plots(rows, Path(tmp))
        checks.append(("both SVGs written", len(written) == 2))
        svg = "{http://www.w3.org/2000/svg}"
        for path in written:
            try:
                root = ET.parse(path).getroot()
            except ET.ParseError as e:
                checks.append((f"{path.name} parses as XML ({e})", False))
                continue
            checks.append((f"{path.name} parses as XML", root.tag == f"{svg}svg"))
            texts = [t.text or "" for t in root.iter(f"{svg}text")]
            if path.name == ECHO_SVG:
                bars = [r for r in root.iter(f"{svg}rect") if r.get("fill") in COLORS]
                expected = len(echo_series(rows)) * (len(PERCENTILES) + 1)  # + legend boxes
                checks.append((f"{path.name}: {expected} bars and legend boxes",
                               len(bars) == expected))
                checks.append((f"{path.name}: percentile labels",
                               all(name in texts for name, _ in PERCENTILES)))
            else:
                points = list(root.iter(f"{svg}circle"))
                checks.append((f"{path.name}: one point per step",
                               len(points) == sum(len(run) for run in idle_runs(rows))))
                checks.append((f"{path.name}: budget line", any("budget" in t for t in texts)))
    failed = [name for name, ok in checks if not ok]
    for name in failed:
        print(f"bench-plots: check failed: {name}", file=sys.stderr)
    print(f"bench-plots: {len(checks) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Plot tmuxgate-bench JSON lines as SVG: echo latency percentiles and "
                    "gateway memory per connection.")
    parser.add_argument("inputs", nargs="*", metavar="FILE",
                        help="files of tmuxgate-bench output (default or '-': stdin)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "bench", metavar="DIR",
                        help="output directory (default: docs/bench in this repository)")
    parser.add_argument("--check", action="store_true",
                        help="plot scripts/testdata/bench-output.txt into a temporary "
                             "directory and validate the SVGs (for scripts/test)")
    args = parser.parse_args()
    if args.check:
        return check()
    if not args.inputs and sys.stdin.isatty():
        parser.error("give FILEs, or pipe tmuxgate-bench output in")
    written = write_plots(read_rows(args.inputs), args.out)
    for path in written:
        print(f"bench-plots: wrote {path}")
    return 0 if written else 1


if __name__ == "__main__":
    sys.exit(main())
