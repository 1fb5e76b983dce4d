//! `pretouch_mib`: the server maps and touches that much memory at start-up, and it stays
//! resident. (That the allocator then keeps what a burst frees shows under churn, in the storm's
//! page faults: docs/benchmarks.md, stop 26.)

use std::time::Duration;

use crate::harness::{rss_kib, Opts, TestServer};

#[tokio::test]
async fn pretouched_memory_is_resident_and_kept() {
    let plain = TestServer::start(Opts::new()).await;
    let touched = TestServer::start(Opts::new().env("HOSPITAL_PRETOUCH_MIB", 256)).await;
    // Long past the allocator's default purge delay (10 ms, ten times that for its arenas).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (without, with) = (rss_kib(plain.pid()), rss_kib(touched.pid()));
    assert!(with >= without + 200 * 1024, "resident: {without} KiB without, {with} KiB with 256 MiB pretouched");
    assert_eq!(touched.get("/healthz", None).await.status(), 200);

    // The block is the one memory on 2 MiB pages (where the kernel has transparent huge pages
    // at all), and they are off again for whatever is faulted in after it.
    let field = |pid: u32, file: &str, name: &str| -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap_or_default();
        s.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()).unwrap_or(0)
    };
    let (huge, huge_plain) =
        (field(touched.pid(), "smaps_rollup", "AnonHugePages:"), field(plain.pid(), "smaps_rollup", "AnonHugePages:"));
    let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
    if thp.contains("[never]") || thp.is_empty() {
        assert_eq!(huge, 0, "no transparent huge pages on this kernel ({thp:?}), yet {huge} KiB");
    } else {
        // Huge pages are the kernel's best effort: with memory fragmented it falls back to small
        // pages for some ranges (188 MiB of the 256 under the full suite). Without the switch the
        // block gets none (the plain server's few only).
        let more = huge.saturating_sub(huge_plain);
        assert!(more >= 64 * 1024, "the 256 MiB block on huge pages: AnonHugePages {huge} KiB against {huge_plain}");
    }
    // The allocator's first pages, taken before `main` turns huge pages off, may be huge: a few.
    assert!(huge_plain <= 16 * 1024, "without pretouch almost nothing is on huge pages: {huge_plain} KiB");
    assert_eq!(field(touched.pid(), "status", "THP_enabled:"), 0, "huge pages off again after the block");
}
