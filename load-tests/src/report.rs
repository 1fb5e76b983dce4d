//! The report: a table on stdout (with the hospital's figures as ratios to each peer), a Markdown
//! report, a JSON file of the raw figures and two PNG plots (latency by percentile, answers per
//! second over time).

use plotters::prelude::*;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;

use crate::load::{CpuPerAttempt, Figures, BUCKET_MS};

/// A system's correctness verdict, one line.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub system: String,
    pub ok: bool,
    pub detail: String,
}

/// Everything the report shows.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub started_at: String,
    pub machine: Machine,
    pub config: serde_json::Value,
    pub setup_s: f64,
    pub systems: Vec<Figures>,
    pub verdicts: Vec<Verdict>,
    pub notes: Vec<String>,
}

/// One of issue 13's targets for a run: what it asks, the figure reached, whether it was met.
#[derive(Debug, Clone, Serialize)]
pub struct TargetCheck {
    pub target: String,
    pub reached: String,
    pub met: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub nproc: usize,
    pub cpu: String,
    pub mem_total: String,
    pub load_avg_before: String,
    pub kernel: String,
}

impl Machine {
    pub fn describe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .unwrap_or("?")
            .trim()
            .to_string();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_kb: f64 = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        Machine {
            nproc: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            cpu,
            mem_total: format!("{:.1} GiB", mem_kb / 1024.0 / 1024.0),
            load_avg_before: std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim().to_string(),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string(),
        }
    }
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}x", a / b)
    } else {
        "-".into()
    }
}

impl Report {
    fn hospital(&self) -> Option<&Figures> {
        self.systems.iter().find(|f| f.system == "hospital booking")
    }

    /// The main table (Markdown; it reads as plain text too).
    pub fn table(&self) -> String {
        let mut s = String::new();
        s.push_str(
            "| system | attempts | attempts/s | holds | sold out | errors | p50 ms | p95 ms | p99 ms | max ms |\n",
        );
        s.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for f in &self.systems {
            let _ = writeln!(
                s,
                "| {} | {} | {:.0} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
                f.system,
                f.attempts,
                f.attempts_per_s,
                f.ok,
                f.sold_out,
                f.errors(),
                f.p50_ms,
                f.p95_ms,
                f.p99_ms,
                f.max_ms
            );
        }
        s
    }

    /// The hospital's figures divided by each peer's (throughput: higher is better for the
    /// hospital; latency: lower is better).
    pub fn ratios(&self) -> String {
        let Some(h) = self.hospital() else { return String::new() };
        let mut s = String::new();
        s.push_str("| hospital booking ÷ | attempts/s | p50 | p95 | p99 | max |\n|---|---:|---:|---:|---:|---:|\n");
        for f in self.systems.iter().filter(|f| f.system != h.system) {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} |",
                f.system,
                ratio(h.attempts_per_s, f.attempts_per_s),
                ratio(h.p50_ms, f.p50_ms),
                ratio(h.p95_ms, f.p95_ms),
                ratio(h.p99_ms, f.p99_ms),
                ratio(h.max_ms, f.max_ms)
            );
        }
        s
    }

    /// Server and generator CPU per attempt of the hospital's phases, and booking's server CPU
    /// over the ceiling's: what "booking at the cost of a bare request" asks, measured without
    /// the spread of one short storm's rate.
    pub fn cpu(&self) -> String {
        let with: Vec<(&str, CpuPerAttempt)> =
            self.systems.iter().filter_map(|f| f.cpu_us.map(|c| (f.system.as_str(), c))).collect();
        if with.is_empty() {
            return String::new();
        }
        let mut s = String::new();
        s.push_str("| system | server µs per attempt | generator µs per attempt |\n|---|---:|---:|\n");
        for (name, c) in &with {
            let _ = writeln!(s, "| {name} | {:.1} | {:.1} |", c.server, c.generator);
        }
        let find = |name: &str| with.iter().find(|(n, _)| *n == name).map(|(_, c)| *c);
        if let (Some(b), Some(h)) = (find("hospital booking"), find("hospital /healthz")) {
            let _ = writeln!(s, "\nBooking's server CPU per attempt ÷ /healthz's: {}", ratio(b.server, h.server));
        }
        s
    }

    pub fn errors_detail(&self) -> String {
        let mut s = String::new();
        s.push_str("| system | timeouts | connection errors | 5xx | unexpected |\n|---|---:|---:|---:|---:|\n");
        for f in &self.systems {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} |",
                f.system, f.timeouts, f.connection_errors, f.server_errors, f.unexpected
            );
        }
        s
    }

    /// Issue 13's targets for this run's scenario (`storm::Scenario`), as reached: the report's
    /// table, and the `targets` of figures.json that `load-tests/sets.py` counts over sets.
    pub fn target_checks(&self) -> Vec<TargetCheck> {
        let Some(h) = self.hospital() else { return Vec::new() };
        let find = |name: &str| self.systems.iter().find(|f| f.system == name);
        let mut v = Vec::new();
        let mut check = |target: &str, reached: String, met: bool| {
            v.push(TargetCheck { target: target.to_string(), reached, met });
        };
        let ok_per_s = |f: &Figures| f.ok as f64 / f.duration_s.max(1e-9);
        match self.config.get("scenario").and_then(|v| v.as_str()) {
            Some("sold-out") => {
                if let Some(c) = find("hospital /healthz") {
                    let r = h.attempts_per_s / c.attempts_per_s.max(1e-9);
                    check("booking attempts/s ≥ 0.9x /healthz", format!("{r:.2}x"), r >= 0.9);
                }
                if let Some(rd) = find("redis durable") {
                    let r = h.attempts_per_s / rd.attempts_per_s.max(1e-9);
                    check("booking attempts/s ≥ 1.3x durable Redis", format!("{r:.2}x"), r >= 1.3);
                }
            }
            Some("everyone-wins") => {
                if let Some(pg) = find("postgres") {
                    let r = ok_per_s(h) / ok_per_s(pg).max(1e-9);
                    check("successful holds/s ≥ 5x PostgreSQL", format!("{r:.2}x"), r >= 5.0);
                }
                if let Some(rd) = find("redis durable") {
                    let r = ok_per_s(h) / ok_per_s(rd).max(1e-9);
                    check("successful holds/s ≥ durable Redis", format!("{r:.2}x"), r >= 1.0);
                }
            }
            // The taps spread over a second: the rate is the spread's; its target is the p99 below.
            _ => {}
        }
        // A burst's p99 is its drain time (docs/benchmarks.md, "Targets"): a target only where the
        // taps are spread as people's are.
        if self.config.get("spread_ms").and_then(|v| v.as_u64()).unwrap_or(0) > 0 {
            check(&format!("p99 < 50 ms ({} patients)", h.attempts), format!("{:.1} ms", h.p99_ms), h.p99_ms < 50.0);
        }
        v
    }

    pub fn targets(&self) -> String {
        if self.hospital().is_none() {
            return String::new();
        }
        let mut s = String::new();
        s.push_str("| target | reached | met |\n|---|---|---|\n");
        for t in self.target_checks() {
            let _ = writeln!(s, "| {} | {} | {} |", t.target, t.reached, yes(t.met));
        }
        s
    }

    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# Release storm, {}\n", self.started_at);
        let m = &self.machine;
        let _ = writeln!(
            s,
            "Machine: {} cores ({}), {} RAM, Linux {}; load average before the run: {}. The generator runs \
             on the same machine.\n",
            m.nproc, m.cpu, m.mem_total, m.kernel, m.load_avg_before
        );
        let _ = writeln!(s, "Configuration: `{}`\n", self.config);
        let _ = writeln!(s, "Setup (logins and 就诊人 of every patient): {:.1} s\n", self.setup_s);
        let _ = writeln!(s, "## Figures\n\n{}", self.table());
        let _ = writeln!(s, "## Ratios\n\n{}", self.ratios());
        let _ = writeln!(s, "## Targets\n\n{}", self.targets());
        let cpu = self.cpu();
        if !cpu.is_empty() {
            let _ = writeln!(s, "## CPU per attempt (from just before the release to the last answer)\n\n{cpu}");
        }
        let _ = writeln!(s, "## Errors\n\n{}", self.errors_detail());
        s.push_str(
            "## Correctness (read back from each system afterwards)\n\n| system | ok | detail |\n|---|---|---|\n",
        );
        for v in &self.verdicts {
            let _ = writeln!(s, "| {} | {} | {} |", v.system, yes(v.ok), v.detail);
        }
        if !self.notes.is_empty() {
            s.push_str("\n## Notes\n\n");
            for n in &self.notes {
                let _ = writeln!(s, "- {n}");
            }
        }
        s.push_str("\n![latency](latency.png)\n\n![throughput](throughput.png)\n");
        s
    }

    pub fn write_all(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("report.md"), self.markdown())?;
        // The figures with the targets as reached (derived from them, written for sets.py).
        let mut json = serde_json::to_value(self)?;
        json["targets"] = serde_json::to_value(self.target_checks())?;
        std::fs::write(dir.join("figures.json"), serde_json::to_string_pretty(&json)?)?;
        if register_font() {
            plot_latency(&self.systems, &dir.join("latency.png"))?;
            plot_throughput(&self.systems, &dir.join("throughput.png"))?;
        } else {
            eprintln!("no TrueType font found (fonts-dejavu-core): plots skipped");
        }
        Ok(())
    }
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "NO"
    }
}

/// Registers a TrueType font for the plots' text; false if none is installed.
pub fn register_font() -> bool {
    for path in [
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/TTF/DejaVuSans.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    ] {
        if let Ok(bytes) = std::fs::read(path) {
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                return true;
            }
        }
    }
    false
}

const COLORS: [RGBColor; 6] = [
    RGBColor(214, 39, 40),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(127, 127, 127),
];

type PlotResult = Result<(), Box<dyn std::error::Error>>;

fn plot_latency(systems: &[Figures], path: &Path) -> anyhow::Result<()> {
    let series: Vec<(String, &[(f64, f64)])> =
        systems.iter().map(|f| (f.system.clone(), f.percentile_curve.as_slice())).collect();
    plot_percentiles("Release storm: latency by percentile (log scale)", &series, path)
}

/// Latency by percentile, one line per named curve (percentile, ms), on a log scale; the PNG at
/// `path`. Needs `register_font` first.
pub fn plot_percentiles(title: &str, series: &[(String, &[(f64, f64)])], path: &Path) -> anyhow::Result<()> {
    let go = || -> PlotResult {
        let root = BitMapBackend::new(path, (900, 500)).into_drawing_area();
        root.fill(&WHITE)?;
        let max = series.iter().flat_map(|s| s.1.iter().map(|p| p.1)).fold(1.0f64, f64::max) * 1.5;
        let min =
            series.iter().flat_map(|s| s.1.iter().map(|p| p.1)).filter(|v| *v > 0.0).fold(max, f64::min).max(0.01);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..100f64, (min..max).log_scale())?;
        chart.configure_mesh().x_desc("percentile").y_desc("latency (ms)").draw()?;
        for (i, (name, curve)) in series.iter().enumerate() {
            let c = COLORS[i % COLORS.len()];
            chart
                .draw_series(LineSeries::new(curve.iter().map(|&(p, v)| (p, v.max(min))), c.stroke_width(2)))?
                .label(name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
        Ok(())
    };
    go().map_err(|e| anyhow::anyhow!("latency plot: {e}"))
}

fn plot_throughput(systems: &[Figures], path: &Path) -> anyhow::Result<()> {
    let go = || -> PlotResult {
        let root = BitMapBackend::new(path, (900, 500)).into_drawing_area();
        root.fill(&WHITE)?;
        let per_s = 1000.0 / BUCKET_MS as f64;
        let max_t =
            systems.iter().map(|f| f.throughput_series.len()).max().unwrap_or(1) as f64 * BUCKET_MS as f64 / 1000.0;
        let max_y =
            systems.iter().flat_map(|f| f.throughput_series.iter()).copied().max().unwrap_or(1) as f64 * per_s * 1.1;
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("Release storm: answers per second ({BUCKET_MS} ms buckets)"), ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..max_t.max(0.1), 0f64..max_y.max(1.0))?;
        chart.configure_mesh().x_desc("seconds after the release").y_desc("answers/s").draw()?;
        for (i, f) in systems.iter().enumerate() {
            let c = COLORS[i % COLORS.len()];
            let pts = f
                .throughput_series
                .iter()
                .enumerate()
                .map(|(b, &n)| ((b as f64 + 0.5) * BUCKET_MS as f64 / 1000.0, n as f64 * per_s));
            chart
                .draw_series(LineSeries::new(pts, c.stroke_width(2)))?
                .label(f.system.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
        Ok(())
    };
    go().map_err(|e| anyhow::anyhow!("throughput plot: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(system: &str, attempts_per_s: f64, ok: usize, p99_ms: f64) -> Figures {
        let duration_s = 10_000.0 / attempts_per_s;
        Figures {
            system: system.into(),
            attempts: 10_000,
            duration_s,
            attempts_per_s,
            ok,
            p99_ms,
            ..Figures::default()
        }
    }

    fn report(scenario: &str, spread_ms: u64, hospital: f64, ok: usize) -> Report {
        Report {
            started_at: String::new(),
            machine: Machine::describe(),
            config: serde_json::json!({ "scenario": scenario, "spread_ms": spread_ms }),
            setup_s: 0.0,
            systems: vec![
                figures("hospital booking", hospital, ok, 40.0),
                figures("hospital /healthz", 20_000.0, 10_000, 30.0),
                figures("postgres", 2_000.0, ok, 900.0),
                figures("redis durable", 15_000.0, ok, 500.0),
            ],
            verdicts: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Each storm shows its own targets from issue 13 and no other's: a burst has no p99 target,
    /// the spread storm no rate target.
    #[test]
    fn each_storm_shows_its_own_targets() {
        let sold_out = report("sold-out", 0, 19_000.0, 120).targets();
        assert!(sold_out.contains("| booking attempts/s ≥ 0.9x /healthz | 0.95x | yes |"), "{sold_out}");
        assert!(sold_out.contains("| booking attempts/s ≥ 1.3x durable Redis | 1.27x | NO |"), "{sold_out}");
        assert!(!sold_out.contains("p99") && !sold_out.contains("PostgreSQL"), "{sold_out}");

        let wins = report("everyone-wins", 0, 15_500.0, 10_000).targets();
        assert!(wins.contains("| successful holds/s ≥ 5x PostgreSQL | 7.75x | yes |"), "{wins}");
        assert!(wins.contains("| successful holds/s ≥ durable Redis | 1.03x | yes |"), "{wins}");
        assert!(!wins.contains("p99") && !wins.contains("/healthz"), "{wins}");

        let paced = report("human-paced", 1000, 9_990.0, 120).targets();
        assert!(paced.contains("| p99 < 50 ms (10000 patients) | 40.0 ms | yes |"), "{paced}");
        assert_eq!(paced.lines().count(), 3, "the header, its rule and the p99 row: {paced}");
    }
}
