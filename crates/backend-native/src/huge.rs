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
/// before writing: pages already touched are only merged later, by the
/// kernel's background scan. Returns whether the kernel took the request
/// (`false` where the buffer spans no whole huge page).
pub(crate) fn advise<T>(v: &Vec<T>) -> bool {
    let start = v.as_ptr() as usize;
    let bytes = v.capacity().saturating_mul(std::mem::size_of::<T>());
    let lo = start.next_multiple_of(HUGE);
    let hi = (start.saturating_add(bytes)) / HUGE * HUGE;
    if hi <= lo {
        return false;
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

/// `v` moved into a buffer that `advise` was called on before it was
/// written, so a loaded index gets huge pages at once (not after the
/// kernel's background scan). Small vectors come back as they are.
pub(crate) fn adopt<T>(v: Vec<T>) -> Vec<T> {
    if v.len().saturating_mul(std::mem::size_of::<T>()) < 2 * HUGE {
        return v;
    }
    let mut out = Vec::with_capacity(v.len());
    advise(&out);
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
        let took = advise(&v);
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
        assert!(!advise(&Vec::<u8>::new()));
        assert!(!advise(&vec![1u8; 4096]));
        let v = adopt(vec![7u16; 100]);
        assert_eq!(v, vec![7u16; 100]);
        let big: Vec<u64> = (0..(HUGE as u64)).collect();
        let moved = adopt(big.clone());
        assert_eq!(moved, big);
    }
}
