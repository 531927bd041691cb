//! The HTML report of a run ([`html_report`]): one self-contained page — no script, font
//! or style from the network — with the run's figures, its parameters, and four charts
//! drawn by `plotters` as inline SVG: throughput over time, latency percentiles over time,
//! the latency distribution (an HDR percentile plot, log scales) and errors by kind over
//! time. The report itself is embedded as JSON (`<script type="application/json"
//! id="strata-report">`) for programs that read the page.
//!
//! The charts over time need the plan's timeline (`LoadPlan::timeline`, which the CLI
//! turns on with `--report`); without it the page says so in their place.

use std::fmt::Write as _;

use plotters::prelude::*;

use super::plan::LoadPlan;
use super::record::{ErrorKind, LoadReport, Tally};
use super::shape::Body;

const WIDTH: u32 = 1100;
const HEIGHT: u32 = 360;

/// The colours of the series, in order.
const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// The page for `report`, made from `tally` (its histogram and timeline) and `plan`.
pub fn html_report(report: &LoadReport, tally: &Tally, plan: &LoadPlan) -> String {
    let mut page = String::with_capacity(64 << 10);
    let title = format!("strata load: {}", report.url);
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        escape(&title),
        escape(&title)
    );
    let verdict = if report.passed { "passed" } else { "FAILED" };
    let _ = writeln!(
        page,
        "<p class=\"verdict {}\">{verdict}{}</p>",
        if report.passed { "ok" } else { "bad" },
        if report.interrupted {
            " (interrupted)"
        } else {
            ""
        }
    );
    summary(&mut page, report);
    page.push_str("<h2>Throughput</h2>\n");
    chart(&mut page, throughput_chart(report));
    page.push_str("<h2>Latency over time</h2>\n");
    chart(&mut page, latency_chart(report));
    page.push_str("<h2>Latency distribution</h2>\n");
    chart(&mut page, distribution_chart(tally));
    page.push_str("<h2>Errors by kind</h2>\n");
    chart(&mut page, errors_chart(report));
    if !report.thresholds.is_empty() || !report.stages.is_empty() {
        thresholds(&mut page, report);
    }
    if !report.examples.is_empty() {
        page.push_str("<h2>Examples of failures</h2>\n<ul class=\"examples\">\n");
        for e in &report.examples {
            let _ = writeln!(page, "<li><code>{}</code></li>", escape(e));
        }
        page.push_str("</ul>\n");
    }
    parameters(&mut page, report, plan);
    let json = serde_json::to_string(report).expect("a report encodes");
    let _ = write!(
        page,
        "<script type=\"application/json\" id=\"strata-report\">{}</script>\n</body>\n</html>\n",
        json.replace("</", "<\\/")
    );
    page
}

const STYLE: &str = "body{font-family:sans-serif;margin:24px;color:#222;max-width:1150px}\
h1{font-size:22px}h2{font-size:18px;margin-top:28px}\
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 10px;text-align:left}\
td.n{text-align:right;font-variant-numeric:tabular-nums}\
.verdict{font-weight:bold;font-size:18px}.ok{color:#1a7f37}.bad{color:#c62828}\
.none{color:#777;font-style:italic}code{font-size:13px}svg{display:block}";

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn summary(page: &mut String, r: &LoadReport) {
    let l = &r.latency_ms;
    let e = &r.errors;
    let rows: [(&str, &str, String); 16] = [
        ("requests", "Requests", r.requests.to_string()),
        ("ok", "Successful", r.ok.to_string()),
        ("elapsed_s", "Seconds", format!("{:.2}", r.elapsed_s)),
        (
            "throughput",
            "Requests per second",
            format!("{:.1}", r.throughput),
        ),
        (
            "error_rate",
            "Error rate",
            format!("{:.4}%", r.error_rate * 100.0),
        ),
        ("p50", "Latency p50 (ms)", format!("{:.3}", l.p50)),
        ("p90", "Latency p90 (ms)", format!("{:.3}", l.p90)),
        ("p99", "Latency p99 (ms)", format!("{:.3}", l.p99)),
        ("p99_9", "Latency p99.9 (ms)", format!("{:.3}", l.p99_9)),
        ("max", "Latency max (ms)", format!("{:.3}", l.max)),
        ("connect", "Errors: connect", e.connect.to_string()),
        ("timeout", "Errors: timeout", e.timeout.to_string()),
        ("status", "Errors: status", e.status.to_string()),
        ("validation", "Errors: validation", e.validation.to_string()),
        ("busy", "Errors: busy (503)", e.busy.to_string()),
        ("io", "Errors: io", e.io.to_string()),
    ];
    page.push_str("<h2>Figures</h2>\n<table class=\"figures\">\n");
    for (key, label, value) in rows {
        let _ = writeln!(
            page,
            "<tr><th>{label}</th><td class=\"n\" data-figure=\"{key}\">{value}</td></tr>"
        );
    }
    page.push_str("</table>\n");
}

fn thresholds(page: &mut String, r: &LoadReport) {
    page.push_str("<h2>Thresholds</h2>\n<table class=\"thresholds\">\n<tr><th>Where</th><th>Threshold</th><th>Limit</th><th>Measured</th><th>Verdict</th></tr>\n");
    let mut row = |place: &str, t: &super::record::Threshold| {
        let _ = writeln!(
            page,
            "<tr><td>{place}</td><td>{}</td><td class=\"n\">{:.3}</td><td class=\"n\">{:.3}</td><td class=\"{}\">{}</td></tr>",
            escape(&t.name),
            t.limit,
            t.measured,
            if t.passed { "ok" } else { "bad" },
            if t.passed { "passed" } else { "FAILED" }
        );
    };
    for t in &r.thresholds {
        row("whole run", t);
    }
    for s in &r.stages {
        for t in &s.thresholds {
            row(&format!("stage {}", s.stage), t);
        }
    }
    page.push_str("</table>\n");
    if !r.stages.is_empty() {
        page.push_str("<h2>Stages</h2>\n<table class=\"stages\">\n<tr><th>Stage</th><th>From (s)</th><th>To (s)</th><th>Target</th><th>Requests</th><th>Per second</th><th>Error rate</th><th>p99 (ms)</th></tr>\n");
        for s in &r.stages {
            let _ = writeln!(
                page,
                "<tr><td>{}</td><td class=\"n\">{:.1}</td><td class=\"n\">{:.1}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{:.1}</td><td class=\"n\">{:.4}%</td><td class=\"n\">{}</td></tr>",
                s.stage,
                s.from_s,
                s.to_s,
                s.target,
                s.requests,
                s.throughput,
                s.error_rate * 100.0,
                s.p99_ms.map_or("-".into(), |p| format!("{p:.3}"))
            );
        }
        page.push_str("</table>\n");
    }
}

fn parameters(page: &mut String, r: &LoadReport, plan: &LoadPlan) {
    let mut rows: Vec<(&str, String)> = vec![
        ("URL", plan.url.clone()),
        ("Mode", r.mode.clone()),
        ("Processes", r.processes.to_string()),
        ("Clients", r.clients.to_string()),
        ("Sessions", r.sessions.to_string()),
    ];
    if let Some(rate) = plan.rate {
        rows.push(("Rate (per second)", format!("{rate}")));
    }
    if plan.stages.is_empty() {
        if let Some(d) = plan.duration {
            rows.push(("Duration", format!("{d:?}")));
        }
    } else {
        let stages: Vec<String> = plan
            .stages
            .iter()
            .map(|s| format!("{:?}:{}", s.duration, s.target))
            .collect();
        rows.push(("Stages", stages.join(", ")));
    }
    if let Some(t) = plan.total {
        rows.push(("Total", t.to_string()));
    }
    rows.push(("Requests per connection", plan.requests.to_string()));
    rows.push(("Keep-alive", plan.keep_alive.to_string()));
    rows.push(("Timeout", format!("{:?}", plan.timeout)));
    if !plan.pause.is_zero() {
        rows.push(("Pause", format!("{:?} ±{}", plan.pause, plan.jitter)));
    }
    if plan.script.is_empty() {
        rows.push(("Method", plan.method.clone()));
        rows.push((
            "Body",
            match &plan.body {
                Body::None => "none".into(),
                Body::Bytes(b) => format!("{} bytes", b.len()),
                Body::Json(t) => format!("JSON template: {t}"),
            },
        ));
    } else {
        rows.push((
            "Request file",
            format!("{} requests, {:?}", plan.script.len(), plan.order),
        ));
    }
    for (name, value) in &plan.headers {
        let secret = ["authorization", "cookie", "proxy-authorization"]
            .iter()
            .any(|s| name.eq_ignore_ascii_case(s));
        rows.push((
            "Header",
            format!("{name}: {}", if secret { "(hidden)" } else { value }),
        ));
    }
    if plan.tls.insecure {
        rows.push(("TLS", "insecure: certificates NOT checked".into()));
    } else if plan.tls.ca_pem.is_some() {
        rows.push(("TLS", "trusting the given CA certificate only".into()));
    }
    if !plan.expect_status.is_empty() {
        rows.push(("Expected statuses", format!("{:?}", plan.expect_status)));
    }
    if let Some(v) = plan.validation.name() {
        rows.push(("Validation", v.to_string()));
    }
    for e in &plan.expect {
        rows.push(("Expect", format!("{e:?}")));
    }
    page.push_str("<h2>Parameters</h2>\n<table class=\"parameters\">\n");
    for (k, v) in rows {
        let _ = writeln!(page, "<tr><th>{k}</th><td>{}</td></tr>", escape(&v));
    }
    page.push_str("</table>\n");
}

/// Appends a chart's SVG, or a note saying why there is none.
fn chart(page: &mut String, svg: Result<String, String>) {
    match svg {
        Ok(svg) => {
            page.push_str(&svg);
            page.push('\n');
        }
        Err(why) => {
            let _ = writeln!(page, "<p class=\"none\">{}</p>", escape(&why));
        }
    }
}

/// Seconds of which the run covered less than this (the end of the last) are not drawn:
/// their rates would be noise.
const MIN_SPAN: f64 = 0.05;

const NO_TIMELINE: &str =
    "No figures over time: the run kept no timeline (LoadPlan::timeline, --report).";

fn throughput_chart(r: &LoadReport) -> Result<String, String> {
    if r.seconds.is_empty() {
        return Err(NO_TIMELINE.into());
    }
    // Rates at the middle of each second (of the part of the last one the run covered).
    let seconds: Vec<_> = r.seconds.iter().filter(|s| s.span_s >= MIN_SPAN).collect();
    let mid = |s: &super::record::SecondReport| s.t as f64 + s.span_s / 2.0;
    let ok: Vec<(f64, f64)> = seconds
        .iter()
        .map(|s| (mid(s), s.ok as f64 / s.span_s))
        .collect();
    let failed: Vec<(f64, f64)> = seconds
        .iter()
        .map(|s| (mid(s), (s.requests - s.ok) as f64 / s.span_s))
        .collect();
    let clients: Vec<(f64, f64)> = seconds
        .iter()
        .map(|s| (mid(s), f64::from(s.clients)))
        .collect();
    let top = seconds
        .iter()
        .map(|s| s.requests as f64 / s.span_s)
        .fold(1.0, f64::max)
        * 1.1;
    let most_clients = clients.iter().map(|c| c.1).fold(1.0, f64::max) * 1.1;
    let end = r.seconds.len() as f64;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut c = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(70)
            .right_y_label_area_size(60)
            .build_cartesian_2d(0f64..end, 0f64..top)
            .map_err(err)?
            .set_secondary_coord(0f64..end, 0f64..most_clients);
        c.configure_mesh()
            .x_desc("seconds into the run")
            .y_desc("requests per second")
            .draw()
            .map_err(err)?;
        c.configure_secondary_axes()
            .y_desc("clients")
            .draw()
            .map_err(err)?;
        let (a, b, g) = (COLOURS[0], COLOURS[1], COLOURS[2]);
        c.draw_series(markers(&ok, a)).map_err(err)?;
        c.draw_series(LineSeries::new(ok, a.stroke_width(2)))
            .map_err(err)?
            .label("ok per second")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], a));
        c.draw_series(markers(&failed, b)).map_err(err)?;
        c.draw_series(LineSeries::new(failed, b.stroke_width(2)))
            .map_err(err)?
            .label("errors per second")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], b));
        c.draw_secondary_series(LineSeries::new(clients, g))
            .map_err(err)?
            .label("clients (right)")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], g));
        c.configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerRight)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

fn latency_chart(r: &LoadReport) -> Result<String, String> {
    if r.seconds.is_empty() {
        return Err(NO_TIMELINE.into());
    }
    type Pick = fn(&super::record::SecondReport) -> Option<f64>;
    let series: [(&str, Pick); 3] = [
        ("p50", |s| s.p50_ms),
        ("p90", |s| s.p90_ms),
        ("p99", |s| s.p99_ms),
    ];
    let all: Vec<f64> = r
        .seconds
        .iter()
        .flat_map(|s| [s.p50_ms, s.p99_ms])
        .flatten()
        .collect();
    if all.is_empty() {
        return Err("No request was answered: no latencies to draw.".into());
    }
    let lo = all.iter().copied().fold(f64::INFINITY, f64::min).max(0.001) / 1.5;
    let hi = all.iter().copied().fold(0.0, f64::max) * 1.5;
    let end = r.seconds.len() as f64;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut c = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..end, (lo..hi).log_scale())
            .map_err(err)?;
        c.configure_mesh()
            .x_desc("seconds into the run")
            .y_desc("latency (ms, log scale)")
            .y_labels(8)
            .y_label_formatter(&|v| short(*v))
            .draw()
            .map_err(err)?;
        for (i, (name, pick)) in series.iter().enumerate() {
            let colour = COLOURS[i];
            let points: Vec<(f64, f64)> = r
                .seconds
                .iter()
                .filter(|s| s.span_s >= MIN_SPAN)
                .filter_map(|s| pick(s).map(|v| (s.t as f64 + s.span_s / 2.0, v)))
                .collect();
            c.draw_series(markers(&points, colour)).map_err(err)?;
            c.draw_series(LineSeries::new(points, colour.stroke_width(2)))
                .map_err(err)?
                .label(*name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
        }
        c.configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// The x of quantile `q` on the HDR plot: the number of nines, `-log10(1 - q)`.
fn nines(q: f64, most: f64) -> f64 {
    if q >= 1.0 {
        most
    } else {
        (-(1.0 - q).log10()).min(most)
    }
}

fn distribution_chart(tally: &Tally) -> Result<String, String> {
    let h = tally.latency_histogram();
    if h.is_empty() {
        return Err("No request was answered: no latency distribution to draw.".into());
    }
    // As many nines as the count supports (one more than its digits), at most six.
    let most = ((h.len() as f64).log10().ceil() + 1.0).clamp(2.0, 6.0);
    let mut points: Vec<(f64, f64)> = h
        .iter_quantiles(2)
        .map(|v| {
            (
                nines(v.quantile_iterated_to(), most),
                v.value_iterated_to() as f64 / 1000.0,
            )
        })
        .collect();
    points.dedup_by(|a, b| a.0 == b.0);
    let lo = (h.min() as f64 / 1000.0).max(0.001) / 1.5;
    let hi = (h.max() as f64 / 1000.0).max(lo * 2.0) * 1.5;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut c = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..most, (lo..hi).log_scale())
            .map_err(err)?;
        c.configure_mesh()
            .x_desc("percentile")
            .y_desc("latency (ms, log scale)")
            .y_labels(8)
            .x_labels(most as usize + 1)
            .x_label_formatter(&|x| percentile_label(*x))
            .y_label_formatter(&|v| short(*v))
            .draw()
            .map_err(err)?;
        let colour = COLOURS[0];
        c.draw_series(LineSeries::new(points, colour.stroke_width(2)))
            .map_err(err)?
            .label("latency at percentile")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
        c.configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// A latency label: as many decimals as its size needs.
fn short(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// `0 → 0%`, `1 → 90%`, `2 → 99%`, `3 → 99.9%`.
fn percentile_label(x: f64) -> String {
    let p = (1.0 - 10f64.powf(-x)) * 100.0;
    let decimals = (x.round() as usize).saturating_sub(2);
    format!("{p:.decimals$}%")
}

fn errors_chart(r: &LoadReport) -> Result<String, String> {
    if r.seconds.is_empty() {
        return Err(NO_TIMELINE.into());
    }
    let by_kind = |s: &super::record::SecondReport, k: ErrorKind| -> u64 {
        let e = &s.errors;
        match k {
            ErrorKind::Connect => e.connect,
            ErrorKind::Timeout => e.timeout,
            ErrorKind::Status => e.status,
            ErrorKind::Validation => e.validation,
            ErrorKind::Busy => e.busy,
            ErrorKind::Io => e.io,
        }
    };
    let kinds: Vec<ErrorKind> = ErrorKind::ALL
        .into_iter()
        .filter(|&k| r.seconds.iter().any(|s| by_kind(s, k) > 0))
        .collect();
    let top = r
        .seconds
        .iter()
        .filter(|s| s.span_s >= MIN_SPAN)
        .flat_map(|s| kinds.iter().map(|&k| by_kind(s, k) as f64 / s.span_s))
        .fold(1.0, f64::max)
        * 1.1;
    let end = r.seconds.len() as f64;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut c = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..end, 0f64..top)
            .map_err(err)?;
        c.configure_mesh()
            .x_desc("seconds into the run")
            .y_desc("errors per second")
            .draw()
            .map_err(err)?;
        if kinds.is_empty() {
            let colour = COLOURS[2];
            let zeros = [(0.0, 0.0), (end, 0.0)];
            c.draw_series(LineSeries::new(zeros, colour.stroke_width(2)))
                .map_err(err)?
                .label("no errors")
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
        }
        for (i, &k) in kinds.iter().enumerate() {
            let colour = COLOURS[(i + 1) % COLOURS.len()];
            let points: Vec<(f64, f64)> = r
                .seconds
                .iter()
                .filter(|s| s.span_s >= MIN_SPAN)
                .map(|s| (s.t as f64 + s.span_s / 2.0, by_kind(s, k) as f64 / s.span_s))
                .collect();
            c.draw_series(markers(&points, colour)).map_err(err)?;
            c.draw_series(LineSeries::new(points, colour.stroke_width(2)))
                .map_err(err)?
                .label(k.name())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
        }
        c.configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// A dot at each point (a run of one second has no line to draw).
fn markers(
    points: &[(f64, f64)],
    colour: RGBColor,
) -> impl Iterator<Item = Circle<(f64, f64), u32>> + '_ {
    points
        .iter()
        .map(move |&p| Circle::new(p, 3, colour.filled()))
}

fn err(e: impl std::fmt::Display) -> String {
    format!("the chart could not be drawn: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_labels_count_nines() {
        assert_eq!(percentile_label(0.0), "0%");
        assert_eq!(percentile_label(1.0), "90%");
        assert_eq!(percentile_label(2.0), "99%");
        assert_eq!(percentile_label(3.0), "99.9%");
        assert!((nines(0.99, 6.0) - 2.0).abs() < 1e-9);
        assert_eq!(nines(1.0, 4.0), 4.0);
        assert_eq!(
            escape("<a href=\"x\">&</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
        );
    }
}
