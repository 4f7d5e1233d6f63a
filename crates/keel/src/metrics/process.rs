//! Process CPU, memory, file descriptors and start time, read from `/proc` (Linux).

use std::fmt::Write;

use super::registry::header;

pub(crate) fn render(out: &mut String) {
    #[cfg(target_os = "linux")]
    linux(out);
    #[cfg(not(target_os = "linux"))]
    let _ = out;
}

#[cfg(target_os = "linux")]
fn linux(out: &mut String) {
    const TICKS_PER_SECOND: f64 = 100.0;
    const PAGE_SIZE: u64 = 4096;
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    // Fields after the command name (which may hold spaces) start at field 3 (state).
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    if let (Some(utime), Some(stime)) = (field(14), field(15)) {
        header(
            out,
            "process_cpu_seconds_total",
            "User and system CPU time spent, in seconds.",
            "counter",
        );
        let _ = writeln!(
            out,
            "process_cpu_seconds_total {}",
            (utime + stime) as f64 / TICKS_PER_SECOND
        );
    }
    if let Some(rss_pages) = field(24) {
        header(
            out,
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            "gauge",
        );
        let _ = writeln!(
            out,
            "process_resident_memory_bytes {}",
            rss_pages * PAGE_SIZE
        );
    }
    if let Some(vsize) = field(23) {
        header(
            out,
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            "gauge",
        );
        let _ = writeln!(out, "process_virtual_memory_bytes {vsize}");
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        header(out, "process_open_fds", "Open file descriptors.", "gauge");
        let _ = writeln!(out, "process_open_fds {}", fds.count());
    }
    let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse::<u64>().ok())
    });
    if let (Some(boot), Some(start_ticks)) = (boot, field(22)) {
        header(
            out,
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch, in seconds.",
            "gauge",
        );
        let _ = writeln!(
            out,
            "process_start_time_seconds {}",
            boot as f64 + start_ticks as f64 / TICKS_PER_SECOND
        );
    }
}
