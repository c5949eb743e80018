//! Transparent huge pages for the big arrays a search reads at random.
//!
//! A search touches a few hundred rows and link lists spread over the whole
//! index, each on its own 4-KiB page: at 100,000 rows every one of them is a
//! TLB miss, and the page walk that follows is itself a memory read. With
//! 2-MiB pages the CPU's second-level TLB covers a few GiB, and the walk goes
//! away. Linux gives a process huge pages where it asks for them
//! (`madvise(MADV_HUGEPAGE)`), which is the default setting
//! (`/sys/kernel/mm/transparent_hugepage/enabled` = `madvise`); without the
//! request, whether an index got them depended on the machine's setting.
//! Measured on GloVe-50 100k (`vecsearch bench --backends native`), the
//! system-wide `always` setting against `madvise` gave 1.15x-1.18x the QPS at
//! recall 0.95: this module makes that the behaviour everywhere.
//!
//! Only a hint: contents and validity never change, and where the kernel
//! cannot (another OS, THP compiled out or set to `never`) nothing happens.

/// A huge page on x86-64 and on aarch64 with 4-KiB base pages.
const HUGE: usize = 2 << 20;

/// Asks the kernel to back the part of `v`'s buffer (its whole capacity)
/// that covers whole huge pages with huge pages. Call it after reserving,
/// before writing. Returns whether the kernel took the request (`false`
/// where the buffer spans no whole huge page).
///
/// The advice only shapes pages faulted in after it: pages already there
/// stay small until the kernel's background scan merges them, which may be
/// never. A fresh buffer is not always fresh memory: once a large buffer
/// has been freed, glibc raises its mmap threshold (up to 32 MiB) and
/// serves the next ones from heap memory that earlier buffers already
/// faulted in small pages, so the second index built in a process got
/// none (seen: a two-thread i8 build after a one-thread one, 0.0 of
/// 22.7 MB in huge pages). So the whole huge pages of the unused part,
/// past `len`, are given back first (`MADV_DONTNEED`): their next touch
/// faults in a huge page.
pub(crate) fn advise<T>(v: &mut Vec<T>) -> bool {
    let start = v.as_ptr() as usize;
    let size = std::mem::size_of::<T>();
    let bytes = v.capacity().saturating_mul(size);
    let lo = start.next_multiple_of(HUGE);
    let hi = (start.saturating_add(bytes)) / HUGE * HUGE;
    if hi <= lo {
        return false;
    }
    let unused = start
        .saturating_add(v.len().saturating_mul(size))
        .next_multiple_of(HUGE)
        .max(lo);
    if unused < hi {
        // The spare capacity holds no value (Rust never reads it before a
        // write), and `v` is borrowed mutably, so nothing can look at it.
        release_range(unused, hi - unused);
    }
    advise_range(lo, hi - lo)
}

#[cfg(target_os = "linux")]
fn advise_range(at: usize, len: usize) -> bool {
    // SAFETY: `[at, at + len)` lies inside one live allocation (the Vec's
    // buffer, page aligned by the caller), and MADV_HUGEPAGE only changes
    // which page size the kernel backs it with: it never changes, frees or
    // moves the memory's contents, so no Rust reference is invalidated.
    unsafe { libc::madvise(at as *mut libc::c_void, len, libc::MADV_HUGEPAGE) == 0 }
}

#[cfg(not(target_os = "linux"))]
fn advise_range(_at: usize, _len: usize) -> bool {
    false
}

/// Gives the pages of `[at, at + len)` back to the kernel; the next touch
/// faults in fresh zeroed memory. Only for spare capacity (see `advise`).
#[cfg(target_os = "linux")]
fn release_range(at: usize, len: usize) {
    // SAFETY: `[at, at + len)` is page aligned and lies in the spare
    // capacity of one live Vec buffer, past its `len` items: no value lives
    // there and no reference to it exists (the Vec is borrowed mutably).
    // MADV_DONTNEED on private anonymous memory only makes those pages read
    // as zeros at their next touch; the mapping and every byte outside the
    // range are unchanged. Failure leaves the pages as they were.
    unsafe {
        libc::madvise(at as *mut libc::c_void, len, libc::MADV_DONTNEED);
    }
}

#[cfg(not(target_os = "linux"))]
fn release_range(_at: usize, _len: usize) {}

/// `v` moved into a buffer that `advise` was called on before it was
/// written, so a loaded index gets huge pages at once (not after the
/// kernel's background scan). Small vectors come back as they are.
pub(crate) fn adopt<T>(v: Vec<T>) -> Vec<T> {
    if v.len().saturating_mul(std::mem::size_of::<T>()) < 2 * HUGE {
        return v;
    }
    let mut out = Vec::with_capacity(v.len());
    advise(&mut out);
    out.extend(v);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The VmFlags of the mapping holding `addr`, from /proc/self/smaps.
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    fn vm_flags(addr: usize) -> Option<String> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
        let mut inside = false;
        for line in smaps.lines() {
            if let Some((range, _)) = line.split_once(' ') {
                if let Some((a, b)) = range.split_once('-') {
                    if let (Ok(a), Ok(b)) =
                        (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
                    {
                        inside = a <= addr && addr < b;
                        continue;
                    }
                }
            }
            if inside {
                if let Some(flags) = line.strip_prefix("VmFlags:") {
                    return Some(flags.trim().to_string());
                }
            }
        }
        None
    }

    #[test]
    fn advice_keeps_contents_and_marks_the_mapping() {
        let mut v: Vec<u32> = Vec::with_capacity(3 * HUGE);
        let took = advise(&mut v);
        v.extend(0..3 * HUGE as u32);
        assert!(v.iter().enumerate().all(|(i, &x)| x == i as u32));
        // Checked on x86-64 only: aarch64 is tested here under qemu-user,
        // which accepts the advice without passing it to the kernel.
        #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
        if took {
            // The kernel keeps the request on the mapping ("hg").
            let inner = (v.as_ptr() as usize).next_multiple_of(HUGE);
            let flags = vm_flags(inner).expect("the buffer is mapped");
            assert!(flags.split(' ').any(|f| f == "hg"), "VmFlags: {flags}");
        }
        let _ = took;
    }

    #[test]
    fn small_and_empty_buffers_are_left_alone() {
        assert!(!advise(&mut Vec::<u8>::new()));
        assert!(!advise(&mut vec![1u8; 4096]));
        let v = adopt(vec![7u16; 100]);
        assert_eq!(v, vec![7u16; 100]);
        let big: Vec<u64> = (0..(HUGE as u64)).collect();
        let moved = adopt(big.clone());
        assert_eq!(moved, big);
    }

    /// How many of the 4-KiB pages of `[at, at + len)` are resident.
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    fn resident_pages(at: usize, len: usize) -> usize {
        let mut flags = vec![0u8; len.div_ceil(4096)];
        // SAFETY: `[at, at + len)` is page aligned and mapped (a live Vec
        // buffer), and `flags` has one byte per page, as mincore writes.
        let rc = unsafe { libc::mincore(at as *mut libc::c_void, len, flags.as_mut_ptr()) };
        assert_eq!(rc, 0, "mincore failed");
        flags.iter().filter(|&&f| f & 1 == 1).count()
    }

    /// Memory already faulted in (as glibc hands out when it reuses freed
    /// heap) is given back past `len`, so its next touch can be a huge
    /// page; the items before `len` keep their values and their pages.
    #[test]
    fn touched_spare_capacity_is_given_back_and_items_kept() {
        let mut v = vec![0xA5u8; 4 * HUGE];
        let keep = HUGE / 2 + 123;
        v.truncate(keep);
        let took = advise(&mut v);
        assert!(v.iter().all(|&x| x == 0xA5));
        #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
        if took {
            let start = v.as_ptr() as usize;
            let spare = (start + keep).next_multiple_of(HUGE);
            let end = (start + v.capacity()) / HUGE * HUGE;
            assert!(end - spare >= 2 * HUGE);
            assert_eq!(
                resident_pages(spare, end - spare),
                0,
                "spare still resident"
            );
            let live = start / 4096 * 4096;
            let live_len = (start + keep).next_multiple_of(4096) - live;
            assert_eq!(resident_pages(live, live_len), live_len / 4096);
        }
        // The room is still there and usable.
        let cap = v.capacity();
        v.resize(cap, 7);
        assert!(v[..keep].iter().all(|&x| x == 0xA5));
        assert!(v[keep..].iter().all(|&x| x == 7));
    }
}
