//! Readings of this process: the wall clock in microseconds, CPU time, and memory from
//! `/proc`.

/// Microseconds since the epoch, the latency probe's clock.
pub(super) fn micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// CPU seconds this process has used, user and system (Linux `/proc/self/stat`, in
/// clock ticks of 1/100 s).
pub(super) fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the command name, which is in parentheses.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks = |i: usize| f.get(i)?.parse::<f64>().ok();
            Some((ticks(11)? + ticks(12)?) / 100.0)
        })
        .unwrap_or(0.0)
}

/// A figure in kB from a `/proc` file of `Field: N kB` lines (Linux).
pub(super) fn proc_kb(path: &str, field: &str) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix(field)?
                    .trim()
                    .strip_suffix("kB")?
                    .trim()
                    .parse()
                    .ok()
            })
        })
        .unwrap_or(0)
}

/// A `/proc/self/status` figure in kB.
pub(super) fn status_kb(field: &str) -> u64 {
    proc_kb("/proc/self/status", field)
}
