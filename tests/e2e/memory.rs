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
}
