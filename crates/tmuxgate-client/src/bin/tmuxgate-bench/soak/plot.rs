//! `--plot FILE.svg`: the soak's samples as a small self-contained SVG, drawn by hand (no
//! dependency): gateway RSS (MiB) above, echo p99 (ms) below, per minute since the start,
//! the warm-up shaded. Both y axes start at 0, so a growth is seen at its true scale.
//! Colours and font as `scripts/bench-plots.py`.

use std::fmt::Write as _;
use std::path::Path;

use super::sample::Sample;

const WIDTH: f64 = 880.0;
const HEIGHT: f64 = 590.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = WIDTH - 40.0;
/// Top of the first panel (the title and subtitle are above).
const FIRST_TOP: f64 = 90.0;
const PANEL_HEIGHT: f64 = 185.0;
/// From one panel's bottom to the next one's top: x labels and the next title.
const PANEL_GAP: f64 = 75.0;
const FONT: &str = "DejaVu Sans, Helvetica, Arial, sans-serif";
/// Okabe-Ito blue and vermillion.
const RSS_COLOR: &str = "#0072B2";
const ECHO_COLOR: &str = "#D55E00";

/// One panel: a title and its points (`None`: no value in that interval, a gap).
struct Panel<'a> {
    title: &'a str,
    color: &'a str,
    points: Vec<(f64, Option<f64>)>,
}

/// Writes the plot of `samples` to `path`; `subtitle` describes the mix, `warmup_minutes`
/// where the warm-up ends.
pub fn write(
    path: &Path,
    samples: &[Sample],
    subtitle: &str,
    warmup_minutes: f64,
) -> std::io::Result<()> {
    let panels = [
        Panel {
            title: "gateway RSS (MiB)",
            color: RSS_COLOR,
            points: samples
                .iter()
                .map(|s| (s.minute, s.rss_kib.map(|k| k as f64 / 1024.0)))
                .collect(),
        },
        Panel {
            title: "keystroke echo p99 per sample (ms)",
            color: ECHO_COLOR,
            points: samples
                .iter()
                .map(|s| (s.minute, s.echo_p99_us.map(|us| us / 1000.0)))
                .collect(),
        },
    ];
    let title = "tmuxgate soak: gateway memory and echo latency";
    std::fs::write(path, svg(title, subtitle, warmup_minutes, &panels))
}

fn svg(title: &str, subtitle: &str, warmup_minutes: f64, panels: &[Panel]) -> String {
    let last_minute = panels
        .iter()
        .flat_map(|p| p.points.iter().map(|(x, _)| *x))
        .fold(warmup_minutes, f64::max);
    let (x_step, x_max) = axis(last_minute);
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="{FONT}" font-size="12">"#
    );
    let _ = writeln!(out, "<title>{}</title>", escape(title));
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    text(
        &mut out,
        WIDTH / 2.0,
        28.0,
        18,
        "middle",
        &format!("<tspan font-weight=\"bold\">{}</tspan>", escape(title)),
    );
    text(&mut out, WIDTH / 2.0, 50.0, 12, "middle", &escape(subtitle));
    for (i, panel) in panels.iter().enumerate() {
        let top = FIRST_TOP + i as f64 * (PANEL_HEIGHT + PANEL_GAP);
        let frame = Frame {
            top,
            bottom: top + PANEL_HEIGHT,
            x_max,
        };
        draw_panel(&mut out, panel, &frame, warmup_minutes, x_step);
    }
    let bottom = FIRST_TOP + panels.len() as f64 * (PANEL_HEIGHT + PANEL_GAP) - PANEL_GAP;
    text(
        &mut out,
        (LEFT + RIGHT) / 2.0,
        bottom + 42.0,
        12,
        "middle",
        "minutes since the start",
    );
    out.push_str("</svg>\n");
    out
}

/// Where a panel is drawn.
struct Frame {
    top: f64,
    bottom: f64,
    x_max: f64,
}

impl Frame {
    fn x(&self, minute: f64) -> f64 {
        LEFT + (RIGHT - LEFT) * minute / self.x_max
    }
}

fn draw_panel(out: &mut String, panel: &Panel, frame: &Frame, warmup: f64, x_step: f64) {
    let values: Vec<f64> = panel.points.iter().filter_map(|(_, y)| *y).collect();
    let highest = values.iter().copied().fold(0.0, f64::max);
    let (y_step, y_max) = axis(highest * 1.05);
    let y = |v: f64| frame.bottom - (frame.bottom - frame.top) * v / y_max;
    let (top, bottom) = (frame.top, frame.bottom);
    if warmup > 0.0 {
        let width = frame.x(warmup) - LEFT;
        let _ = writeln!(
            out,
            "<rect x=\"{LEFT}\" y=\"{top}\" width=\"{width:.1}\" height=\"{PANEL_HEIGHT}\" fill=\"#f0f0f0\"/>"
        );
        text(out, LEFT + width / 2.0, top + 14.0, 11, "middle", "warm-up");
    }
    for tick in ticks(y_step, y_max) {
        let at = y(tick);
        line(out, (LEFT, at), (RIGHT, at), "#e4e4e4");
        text(out, LEFT - 8.0, at + 4.0, 11, "end", &label(tick, y_step));
    }
    for tick in ticks(x_step, frame.x_max) {
        let at = frame.x(tick);
        line(out, (at, bottom), (at, bottom + 5.0), "#222222");
        text(out, at, bottom + 19.0, 11, "middle", &label(tick, x_step));
    }
    line(out, (LEFT, bottom), (RIGHT, bottom), "#222222");
    line(out, (LEFT, top), (LEFT, bottom), "#222222");
    text(out, LEFT, top - 10.0, 13, "start", &escape(panel.title));
    if let (Some(first), Some(last)) = (values.first(), values.last()) {
        let lowest = values.iter().copied().fold(f64::INFINITY, f64::min);
        let digits = if highest >= 100.0 { 0 } else { 2 };
        let summary = format!(
            "first {first:.digits$} · last {last:.digits$} · min {lowest:.digits$} · max {highest:.digits$}"
        );
        text(out, RIGHT, top - 10.0, 11, "end", &summary);
    }
    for segment in panel.points.split(|(_, v)| v.is_none()) {
        let coords: Vec<String> = segment
            .iter()
            .filter_map(|(x, v)| Some(format!("{:.1},{:.1}", frame.x(*x), y((*v)?))))
            .collect();
        if coords.len() > 1 {
            let _ = writeln!(
                out,
                "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"/>",
                coords.join(" "),
                panel.color
            );
        }
        for point in &coords {
            let (cx, cy) = point.split_once(',').unwrap_or_default();
            let _ = writeln!(
                out,
                "<circle cx=\"{cx}\" cy=\"{cy}\" r=\"2.5\" fill=\"{}\"/>",
                panel.color
            );
        }
    }
}

/// A readable tick step for `0..=highest` (1, 2 or 5 × 10ⁿ, about five ticks) and the
/// axis end, a whole number of steps at or above `highest`.
fn axis(highest: f64) -> (f64, f64) {
    if !highest.is_finite() || highest <= 0.0 {
        return (0.2, 1.0);
    }
    let rough = highest / 5.0;
    let magnitude = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= rough)
        .unwrap_or(10.0 * magnitude);
    (step, (highest / step).ceil().max(1.0) * step)
}

/// `0, step, 2·step, …` up to `end`.
fn ticks(step: f64, end: f64) -> Vec<f64> {
    let n = (end / step).round() as usize;
    (0..=n).map(|i| i as f64 * step).collect()
}

/// A tick label with as many decimals as the step needs.
fn label(value: f64, step: f64) -> String {
    let digits = (-step.log10().floor()).max(0.0) as usize;
    format!("{value:.digits$}")
}

fn line(out: &mut String, (x1, y1): (f64, f64), (x2, y2): (f64, f64), stroke: &str) {
    let _ = writeln!(
        out,
        "<line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" stroke=\"{stroke}\"/>"
    );
}

/// A text element; `content` is already escaped (it may hold a `tspan`).
fn text(out: &mut String, x: f64, y: f64, size: u32, anchor: &str, content: &str) {
    let _ = writeln!(
        out,
        "<text x=\"{x:.1}\" y=\"{y:.1}\" font-size=\"{size}\" text-anchor=\"{anchor}\">{content}</text>"
    );
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_take_round_steps() {
        assert_eq!(axis(62.0), (20.0, 80.0));
        assert_eq!(axis(0.9), (0.2, 1.0));
        assert_eq!(axis(0.0), (0.2, 1.0));
        assert_eq!(ticks(20.0, 80.0), [0.0, 20.0, 40.0, 60.0, 80.0]);
        assert_eq!(
            (label(40.0, 20.0), label(0.4, 0.2)),
            ("40".into(), "0.4".into())
        );
    }

    #[test]
    fn draws_a_line_per_unbroken_run_of_values() {
        let points = vec![
            (1.0, Some(10.0)),
            (2.0, Some(11.0)),
            (3.0, None),
            (4.0, Some(12.0)),
        ];
        let panel = Panel {
            title: "RSS <MiB>",
            color: RSS_COLOR,
            points,
        };
        let svg = svg("t & t", "sub", 2.0, &[panel]);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert_eq!(svg.matches("<circle").count(), 3);
        assert!(svg.contains("RSS &lt;MiB&gt;") && svg.contains("t &amp; t"));
        assert!(svg.contains("warm-up"));
    }
}
