//! Memory taken up front (`pretouch_mib`): mapped and touched at start-up, and kept.
//!
//! A release storm puts every patient's request in flight at once, and each one's buffers,
//! futures and rows land on pages the process has never touched: the kernel faults each in and
//! zeroes it, about a fifth of a durable hold's CPU in docs/benchmarks.md (stop 26). Touched
//! here, before the first request, and never given back, that memory is already mapped when the
//! burst comes. The cost is the resident size: at least `pretouch_mib` from start-up on, and
//! what a burst grows past it stays too. Off by default (a demo or a test server has no storm
//! to prepare for); a node that takes release storms sets it to its storms' high-water mark.

use std::time::Instant;

/// mimalloc's `mi_option_purge_delay` (`mimalloc.h`, v2 and v3): how long freed memory waits
/// before it goes back to the OS (10 ms by default); -1: never.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// The most that is touched: one block inside the allocator's first arena (mimalloc reserves
/// 1 GiB at a time). Measured (docs/benchmarks.md, stop 26): a 768 MiB block there took a storm's
/// page faults from 94,000 to 2,400; the same 1 GiB in 64 MiB blocks, spread over two arenas,
/// only to 33,000 (small allocations were then served from the second arena's untouched part),
/// and one 1 GiB block, too large for an arena, is mapped for itself and unmapped on its free.
pub const MAX_MIB: usize = 768;

/// Has the allocator keep what is freed instead of returning it to the OS, then allocates
/// `asked` MiB (at most `MAX_MIB`, said in a warning if more is asked) as one block, writes one
/// byte in each 4 KiB page and frees it: the pages stay mapped for what is allocated next.
/// 0: nothing is changed.
pub fn pretouch(asked: usize) {
    if asked == 0 {
        return;
    }
    let started = Instant::now();
    let mib = asked.min(MAX_MIB);
    if mib < asked {
        tracing::warn!(asked, mib, "pretouch_mib is capped at one allocator arena's worth");
    }
    // SAFETY: sets a process-wide option of the allocator; no pointers are passed.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    huge_pages(true);
    let len = mib << 20;
    let mut block: Vec<u8> = Vec::with_capacity(len);
    let base = block.as_mut_ptr();
    for offset in (0..len).step_by(4096) {
        // SAFETY: `offset < len`, inside the allocation; a volatile write so the loop, which
        // nothing reads, is not optimised away, and the kernel has to map each page.
        unsafe { base.add(offset).write_volatile(0) };
    }
    drop(block);
    huge_pages(false);
    tracing::info!(mib, ms = started.elapsed().as_millis() as u64, "memory pretouched and kept");
}

/// Turns transparent huge pages (2 MiB) for the process on or off: on while the block is
/// touched, off again after, so the block is backed by huge pages and nothing else is. (`main`
/// turns them off at start; the flag governs new faults only, so the block keeps its pages.)
///
/// Why the block: a hold walks a lot of memory (the memtable's skip list, rows, every request's
/// buffers and futures), and with 4 KiB pages most walks miss the TLB, each miss a two-level page
/// walk on a virtual machine: with the block on 2 MiB pages the 10,000-patient storms took 7-11 %
/// less server CPU a hold (docs/benchmarks.md, stop 38). Why nothing else: memory past the block
/// is faulted in during the storm, and a huge page zeroes all of its 2 MiB at its first touch
/// (`clear_page_erms` was 30 % of a storm's CPU before pretouch existed; with huge pages left on
/// past the block, the 18,000-patient storm that outgrows it went from 138-179 to 241-260 µs).
fn huge_pages(on: bool) {
    let disable = libc::c_ulong::from(!on);
    // SAFETY: a process-wide flag; no pointers are passed.
    if unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, disable, 0, 0, 0) } != 0 {
        tracing::warn!(on, error = %std::io::Error::last_os_error(), "transparent huge pages not switched");
    }
}
