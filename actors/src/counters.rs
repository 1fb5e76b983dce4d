//! Counters and histograms on hot paths, looked up in the metrics recorder once per process.
//!
//! `metrics::counter!` hashes the name and searches the recorder's registry at every call (about
//! 0.1 µs each; a refused booking counted three and its login check a fourth, part of what a
//! refusal costs beyond a bare request: docs/benchmarks.md; a socket's every update one counter
//! and one histogram). `count!` and `observe!` keep the registry's own handle in a static, so they
//! add to the same series the macros would; labels must then be literals.
//!
//! A handle taken before the process's recorder is installed would be a no-op forever, so the
//! handle is kept only once `recorder_installed` has been called (by whoever installs it, right
//! after); until then `count!` is the plain macro.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// For `count!` in crates that do not name `metrics` themselves.
#[doc(hidden)]
pub use metrics;

static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Says the process's recorder is installed: handles looked up from now on are kept.
pub fn recorder_installed() {
    INSTALLED.store(true, Ordering::Release);
}

/// Runs `f` on the handle in `cell`, registering it with `register` the first time after the
/// recorder was installed (`count!` and `observe!` pass their own static and the macro).
#[doc(hidden)]
pub fn with<H>(cell: &'static OnceLock<H>, register: impl FnOnce() -> H, f: impl FnOnce(&H)) {
    match cell.get() {
        Some(h) => f(h),
        None if INSTALLED.load(Ordering::Acquire) => f(cell.get_or_init(register)),
        None => f(&register()),
    }
}

/// `metrics::counter!($name, labels).increment(1)` for a counter whose labels are literals, with
/// the handle looked up once (see the module's description).
#[macro_export]
macro_rules! count {
    ($name:literal $(, $label:literal => $value:literal)*) => {{
        static HANDLE: ::std::sync::OnceLock<$crate::counters::metrics::Counter> = ::std::sync::OnceLock::new();
        $crate::counters::with(
            &HANDLE,
            || $crate::counters::metrics::counter!($name $(, $label => $value)*),
            |c| c.increment(1),
        );
    }};
}

/// `metrics::histogram!($name).record(value)` for a label-less histogram, with the handle looked
/// up once.
#[macro_export]
macro_rules! observe {
    ($name:literal, $value:expr) => {{
        static HANDLE: ::std::sync::OnceLock<$crate::counters::metrics::Histogram> = ::std::sync::OnceLock::new();
        let value: f64 = $value;
        $crate::counters::with(&HANDLE, || $crate::counters::metrics::histogram!($name), |h| h.record(value));
    }};
}

#[cfg(test)]
mod tests {
    use metrics::{Counter, CounterFn, Key, KeyName, Metadata, Recorder, SharedString, Unit};
    use metrics::{GaugeFn, HistogramFn};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    /// A recorder whose one counter counts increments and registrations.
    #[derive(Default)]
    struct Counting {
        value: Arc<AtomicU64>,
        registered: AtomicU64,
    }

    struct Handle(Arc<AtomicU64>);

    impl CounterFn for Handle {
        fn increment(&self, n: u64) {
            self.0.fetch_add(n, Ordering::Relaxed);
        }
        fn absolute(&self, n: u64) {
            self.0.store(n, Ordering::Relaxed);
        }
    }

    impl Recorder for Counting {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> Counter {
            self.registered.fetch_add(1, Ordering::Relaxed);
            Counter::from_arc(Arc::new(Handle(self.value.clone())))
        }
        fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> metrics::Gauge {
            metrics::Gauge::from_arc(Arc::new(NoGauge))
        }
        fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> metrics::Histogram {
            metrics::Histogram::from_arc(Arc::new(NoHistogram))
        }
    }

    struct NoGauge;
    impl GaugeFn for NoGauge {
        fn increment(&self, _: f64) {}
        fn decrement(&self, _: f64) {}
        fn set(&self, _: f64) {}
    }
    struct NoHistogram;
    impl HistogramFn for NoHistogram {
        fn record(&self, _: f64) {}
    }

    fn hit() {
        crate::count!("counters_test_hits_total", "kind" => "test");
    }

    #[test]
    fn counts_every_call_and_looks_the_handle_up_once_the_recorder_is_installed() {
        // A local recorder: the global one is the process's, set once.
        let recorder = Counting::default();
        metrics::with_local_recorder(&recorder, || {
            hit();
            hit();
        });
        // Not yet installed: looked up at every call, like the macro.
        assert_eq!(recorder.value.load(Ordering::Relaxed), 2);
        assert_eq!(recorder.registered.load(Ordering::Relaxed), 2);
        super::recorder_installed();
        metrics::with_local_recorder(&recorder, || {
            for _ in 0..5 {
                hit();
            }
        });
        assert_eq!(recorder.value.load(Ordering::Relaxed), 7, "every call counted");
        assert_eq!(recorder.registered.load(Ordering::Relaxed), 3, "looked up once after installation");
    }
}
