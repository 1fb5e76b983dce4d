//! The report: a table on stdout, `report.md`, `fanout.json` (every raw figure) and two plots
//! (`latency.png`: the delivery latency distribution; `throughput.png`: deliveries per second).

use anyhow::Result;
use plotters::prelude::*;
use std::path::Path;

use crate::{Phase, Report};

/// CPU model, cores and memory of this machine.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem_kib: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    format!("{cores} cores ({cpu}), {:.0} GiB memory", mem_kib as f64 / 1048576.0)
}

fn ratio(a: f64, b: f64) -> String {
    if b == 0.0 {
        "n/a".into()
    } else {
        format!("{:.2}x", a / b)
    }
}

/// Rows: (figure, hospital, peer, hospital / peer).
fn rows(r: &Report) -> Vec<[String; 4]> {
    let h = &r.phases[0];
    let n = r.phases.get(1);
    let mut out = Vec::new();
    let mut row = |name: &str, f: &dyn Fn(&Phase) -> f64, fmt: &dyn Fn(f64) -> String| {
        let hv = f(h);
        let (nv, rv) = match n {
            Some(p) => (fmt(f(p)), ratio(hv, f(p))),
            None => ("-".into(), "-".into()),
        };
        out.push([name.to_string(), fmt(hv), nv, rv]);
    };
    let int = |v: f64| format!("{v:.0}");
    let ms = |v: f64| format!("{v:.2} ms");
    let kib = |v: f64| format!("{v:.1} KiB");
    row("sockets open", &|p| p.sockets_open as f64, &int);
    row("sockets with the last value", &|p| p.sockets_with_last_value as f64, &int);
    row("time to open all sockets", &|p| p.open_seconds, &|v| format!("{v:.1} s"));
    row("server RSS before sockets", &|p| p.rss_before_kib as f64 / 1024.0, &|v| format!("{v:.1} MiB"));
    row("server RSS with all open", &|p| p.rss_open_kib as f64 / 1024.0, &|v| format!("{v:.1} MiB"));
    row("server RSS peak", &|p| p.rss_peak_kib as f64 / 1024.0, &|v| format!("{v:.1} MiB"));
    row("server memory per socket", &|p| p.kib_per_socket, &kib);
    row("changes made", &|p| p.changes as f64, &int);
    row("change request p50", &|p| p.change_request_p50_ms, &ms);
    row("updates delivered", &|p| p.deliveries as f64, &int);
    row("updates coalesced away", &|p| p.deliveries_possible.saturating_sub(p.deliveries) as f64, &int);
    row("updates out of order", &|p| p.out_of_order as f64, &int);
    row("delivery latency p50", &|p| p.latency_p50_ms, &ms);
    row("delivery latency p90", &|p| p.latency_p90_ms, &ms);
    row("delivery latency p99", &|p| p.latency_p99_ms, &ms);
    row("delivery latency p99.9", &|p| p.latency_p999_ms, &ms);
    row("delivery latency max", &|p| p.latency_max_ms, &ms);
    row("arrival at the client p50", &|p| p.arrival_p50_ms, &ms);
    row("arrival at the client p90", &|p| p.arrival_p90_ms, &ms);
    row("arrival at the client p99", &|p| p.arrival_p99_ms, &ms);
    row("arrival at the client p99.9", &|p| p.arrival_p999_ms, &ms);
    row("server CPU during the drive", &|p| p.server_cpu_seconds, &|v| format!("{v:.1} s"));
    row("server CPU, % of one core", &|p| p.server_cpu_percent, &|v| format!("{v:.0} %"));
    row("server CPU per 1000 deliveries", &|p| 1000.0 * p.server_cpu_seconds / p.deliveries.max(1) as f64, &|v| {
        format!("{:.2} ms", v * 1000.0)
    });
    row("load generator CPU", &|p| p.client_cpu_seconds, &|v| format!("{v:.1} s"));
    out
}

/// The summary as Markdown.
pub fn markdown(r: &Report) -> String {
    let peer = r.phases.get(1).map(|p| p.server.clone()).unwrap_or_else(|| "(no peer)".into());
    let mut s = String::new();
    s.push_str(&format!(
        "{} sockets ({} wanted; descriptor limit soft {} / hard {} per process) over {} server process(es) per system and {} client process(es), {} accounts, {} doctors' topics, {} changes/s for {:.0} s, {} loopback source address(es). Machine: {}.\n\n",
        r.sockets, r.sockets_wanted, r.nofile_soft, r.nofile_hard, r.nodes, r.client_processes, r.accounts, r.doctors, r.changes_per_second, r.duration_s, r.source_addresses, r.machine
    ));
    s.push_str(&format!("| figure | hospital | {peer} | hospital / {peer} |\n|---|---:|---:|---:|\n"));
    for [a, b, c, d] in rows(r) {
        s.push_str(&format!("| {a} | {b} | {c} | {d} |\n"));
    }
    if r.nodes > 1 {
        s.push_str("\nMemory per server process (RSS before the sockets -> with them open):\n\n");
        for p in &r.phases {
            let each: Vec<String> = p
                .processes
                .iter()
                .map(|x| {
                    format!("{:.1} -> {:.1} MiB", x.rss_before_kib as f64 / 1024.0, x.rss_open_kib as f64 / 1024.0)
                })
                .collect();
            s.push_str(&format!("- {}: {}\n", p.server, each.join("; ")));
        }
    }
    for p in &r.phases {
        if p.open_failures > 0
            || p.closed_early > 0
            || p.unmatched > 0
            || p.repeats > 0
            || p.out_of_order > 0
            || p.changes_failed > 0
        {
            s.push_str(&format!(
                "\n{}: {} sockets failed to open (first: {}), {} closed early, {} unmatched updates, {} repeated updates, {} out of order, {} failed changes.\n",
                p.server,
                p.open_failures,
                p.first_open_error.as_deref().unwrap_or("-"),
                p.closed_early,
                p.unmatched,
                p.repeats,
                p.out_of_order,
                p.changes_failed
            ));
        }
    }
    s
}

/// The table for the terminal.
pub fn table(r: &Report) -> String {
    let rows = rows(r);
    let w0 = rows.iter().map(|x| x[0].chars().count()).max().unwrap_or(0);
    let mut s = format!("{:w0$}  {:>14}  {:>14}  {:>10}\n", "figure", "hospital", "peer", "ratio");
    for [a, b, c, d] in rows {
        s.push_str(&format!("{a:w0$}  {b:>14}  {c:>14}  {d:>10}\n"));
    }
    s
}

fn register_font() -> bool {
    static DONE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *DONE.get_or_init(|| {
        for p in ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/dejavu/DejaVuSans.ttf"] {
            if let Ok(bytes) = std::fs::read(p) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                return plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok();
            }
        }
        false
    })
}

const COLORS: [RGBColor; 2] = [RGBColor(200, 60, 40), RGBColor(40, 90, 200)];

/// Latency against quantile (log scale), one line per server.
pub fn plot_latency(r: &Report, path: &Path) -> Result<()> {
    register_font();
    let root = BitMapBackend::new(path, (1000, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let max = r.phases.iter().flat_map(|p| p.latency_curve.iter().map(|x| x.1)).fold(1.0f64, f64::max);
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("WebSocket fan-out: delivery latency, {} sockets", r.sockets), ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..100f64, (0.01f64..max * 1.2).log_scale())?;
    chart.configure_mesh().x_desc("percentile").y_desc("latency (ms)").draw()?;
    for (i, p) in r.phases.iter().enumerate() {
        let pts: Vec<(f64, f64)> = p.latency_curve.iter().map(|&(q, ms)| (q * 100.0, ms.max(0.01))).collect();
        let c = COLORS[i % 2];
        chart
            .draw_series(LineSeries::new(pts, c.stroke_width(2)))?
            .label(p.server.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    chart.configure_series_labels().background_style(WHITE).border_style(BLACK).draw()?;
    root.present()?;
    Ok(())
}

/// Deliveries per second over the run, one line per server, aligned at the drive's start.
pub fn plot_throughput(r: &Report, path: &Path) -> Result<()> {
    register_font();
    let root = BitMapBackend::new(path, (1000, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let series: Vec<Vec<(f64, f64)>> = r
        .phases
        .iter()
        .map(|p| {
            let from = p.drive_started_at_s.floor() as usize;
            p.deliveries_per_second.iter().enumerate().skip(from).map(|(s, &n)| ((s - from) as f64, n as f64)).collect()
        })
        .collect();
    let xmax = series.iter().flat_map(|s| s.iter().map(|x| x.0)).fold(1.0f64, f64::max);
    let ymax = series.iter().flat_map(|s| s.iter().map(|x| x.1)).fold(1.0f64, f64::max);
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("WebSocket fan-out: updates delivered per second, {} sockets", r.sockets), ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..xmax, 0f64..ymax * 1.15)?;
    chart.configure_mesh().x_desc("seconds since the driver started").y_desc("deliveries / s").draw()?;
    for (i, (p, pts)) in r.phases.iter().zip(series).enumerate() {
        let c = COLORS[i % 2];
        chart
            .draw_series(LineSeries::new(pts, c.stroke_width(2)))?
            .label(p.server.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    chart.configure_series_labels().background_style(WHITE).border_style(BLACK).draw()?;
    root.present()?;
    Ok(())
}

/// Writes report.md, fanout.json and the plots under `dir`.
pub fn write_all(r: &Report, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("report.md"), markdown(r))?;
    std::fs::write(dir.join("fanout.json"), serde_json::to_vec_pretty(r)?)?;
    plot_latency(r, &dir.join("latency.png"))?;
    plot_throughput(r, &dir.join("throughput.png"))?;
    Ok(())
}
