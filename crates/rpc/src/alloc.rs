//! Heap bytes, counted: a global allocator ([`Counting`], the system allocator underneath)
//! that keeps each thread's net bytes allocated, so that a service can measure what a value
//! really holds ([`heap_bytes_of`]: what a deep copy of it allocates) and bound memory by it
//! rather than by a count of bytes written. Each binary installs it:
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOC: tradepact_rpc::alloc::Counting = tradepact_rpc::alloc::Counting;
//! ```
//!
//! Without it (library tests) [`heap_bytes_of`] says `None` and callers fall back to a model.
//!
//! An allocation is counted as what it takes from the allocator, not as what was asked for:
//! its usable size (`malloc_usable_size`) and glibc's 8-byte chunk header, so a 5-byte string
//! counts 32 bytes. (Counted as asked for, a negotiation of many short labels was measured at
//! half what it held, and 200 large ones under a 256 MiB budget held 470 MB.) The cost is that
//! call and one thread-local add per allocation and free.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    /// Bytes this thread has allocated less those it has freed (of any thread's allocations).
    static NET: Cell<isize> = const { Cell::new(0) };
}

fn add(n: isize) {
    // `try_with`: nothing to count while the thread's locals are being torn down.
    let _ = NET.try_with(|c| c.set(c.get().wrapping_add(n)));
}

fn net() -> isize {
    NET.try_with(Cell::get).unwrap_or(0)
}

/// Bytes the allocation at `p` takes from the allocator: its usable size and the chunk
/// header before it.
fn taken(p: *mut u8) -> isize {
    // SAFETY: `p` is a live allocation of `System` (malloc and its aligned variants).
    (unsafe { libc::malloc_usable_size(p.cast()) } + CHUNK_HEADER) as isize
}

/// glibc's bytes before each chunk (`SIZE_SZ`).
const CHUNK_HEADER: usize = 8;

/// The system allocator, counting each thread's net bytes.
pub struct Counting;

// SAFETY: every call goes to `System` unchanged; the counting touches only a thread-local
// `Cell` (no allocation, no lock).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            add(taken(p));
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            add(taken(p));
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(-taken(ptr));
        unsafe { System.dealloc(ptr, layout) };
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let before = taken(ptr);
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            add(taken(p) - before);
        }
        p
    }
}

/// Whether [`Counting`] is the global allocator.
pub fn counting() -> bool {
    let before = net();
    let probe = std::hint::black_box(Box::new([0u8; 64]));
    let counted = net() - before >= 64;
    drop(probe);
    counted
}

/// What `f` allocated on this thread, net of what it freed (its result's heap bytes, when
/// it builds one and frees its scratch), with its result; `None` without [`Counting`].
pub fn measure<T>(f: impl FnOnce() -> T) -> (T, Option<isize>) {
    let before = net();
    let out = f();
    let after = net();
    (out, counting().then_some(after - before))
}

/// The heap bytes `value` holds, as a deep copy of it allocates (shared parts — `Arc`s — are
/// not counted); `None` without [`Counting`].
pub fn heap_bytes_of<T: Clone>(value: &T) -> Option<usize> {
    let (copy, bytes) = measure(|| value.clone());
    drop(copy);
    bytes.map(|b| b.max(0) as usize)
}
