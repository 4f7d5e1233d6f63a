//! Process CPU, memory, file descriptors and start time, read from `/proc` (Linux).

use super::Scrape;

pub(crate) fn render(out: &mut Scrape) {
    #[cfg(target_os = "linux")]
    linux(out);
    #[cfg(not(target_os = "linux"))]
    let _ = out;
}

#[cfg(target_os = "linux")]
fn linux(out: &mut Scrape) {
    const TICKS_PER_SECOND: f64 = 100.0;
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
        out.family(
            "process_cpu_seconds_total",
            "User and system CPU time spent, in seconds.",
            "counter",
        )
        .sample(
            "process_cpu_seconds_total",
            &[],
            (utime + stime) as f64 / TICKS_PER_SECOND,
        );
    }
    // From `VmRSS` in bytes, not `stat`'s page count: pages are 16 or 64 KiB on some arm64
    // kernels.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if let Some(rss) = vm_rss_bytes(&status) {
        out.family(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            "gauge",
        )
        .sample("process_resident_memory_bytes", &[], rss);
    }
    if let Some(vsize) = field(23) {
        out.family(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            "gauge",
        )
        .sample("process_virtual_memory_bytes", &[], vsize);
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        out.family("process_open_fds", "Open file descriptors.", "gauge")
            .sample("process_open_fds", &[], fds.count());
    }
    let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse::<u64>().ok())
    });
    if let (Some(boot), Some(start_ticks)) = (boot, field(22)) {
        out.family(
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch, in seconds.",
            "gauge",
        )
        .sample(
            "process_start_time_seconds",
            &[],
            boot as f64 + start_ticks as f64 / TICKS_PER_SECOND,
        );
    }
}

/// `VmRSS:  1234 kB` of `/proc/self/status`, in bytes.
fn vm_rss_bytes(status: &str) -> Option<u64> {
    let value = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let kib = value
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::vm_rss_bytes;

    #[test]
    fn reads_vm_rss_in_bytes() {
        let status = "Name:\tkeel\nVmPeak:\t  99999 kB\nVmRSS:\t   51200 kB\nThreads:\t4\n";
        assert_eq!(vm_rss_bytes(status), Some(51200 * 1024));
        assert_eq!(vm_rss_bytes("Name:\tkeel\n"), None);
        assert_eq!(vm_rss_bytes("VmRSS: lots"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_has_a_resident_size() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let rss = vm_rss_bytes(&status).unwrap();
        assert!(rss > 1024 * 1024, "{rss}");
    }
}
