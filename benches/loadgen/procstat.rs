//! CPU time and memory of the process under test, from /proc.
//!
//! Kamailio runs as a tree of processes, presence-proxy as threads: both are
//! covered by walking the process tree below the given pid and summing every task.
//! CPU comes from `schedstat` (nanoseconds, exact) with `stat` utime/stime (clock
//! ticks) for the user/system split; memory is PSS from `smaps_rollup`, so pages
//! Kamailio's processes share are counted once.

use std::collections::HashMap;
use std::fs;

/// The pid and all its descendants.
pub fn tree(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(dir) = fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Some(ppid) = stat_fields(&format!("/proc/{pid}/stat"))
                .and_then(|f| f.get(1).and_then(|s| s.parse().ok()))
            {
                children.entry(ppid).or_default().push(pid);
            }
        }
    }
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        if let Some(c) = children.get(&out[i]) {
            out.extend_from_slice(c);
        }
        i += 1;
    }
    out
}

/// Fields of a `stat` file after the command name: [0] = state (field 3), [1] = ppid,
/// [11] = utime, [12] = stime.
fn stat_fields(path: &str) -> Option<Vec<String>> {
    let s = fs::read_to_string(path).ok()?;
    let close = s.rfind(')')?;
    Some(
        s[close + 2..]
            .split_whitespace()
            .map(str::to_string)
            .collect(),
    )
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu {
    /// sum_exec_runtime of every task, nanoseconds.
    pub ns: u64,
    /// utime and stime, clock ticks (USER_HZ, 100 per second here).
    pub utime: u64,
    pub stime: u64,
}

impl Cpu {
    pub fn since(&self, before: &Cpu) -> Cpu {
        Cpu {
            ns: self.ns.saturating_sub(before.ns),
            utime: self.utime.saturating_sub(before.utime),
            stime: self.stime.saturating_sub(before.stime),
        }
    }
}

/// CPU used so far by every task of every process in `pids`.
pub fn cpu(pids: &[u32]) -> Cpu {
    let mut c = Cpu::default();
    for pid in pids {
        let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let p = t.path();
            if let Ok(s) = fs::read_to_string(p.join("schedstat")) {
                c.ns += s
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
            if let Some(f) = stat_fields(&p.join("stat").to_string_lossy()) {
                c.utime += f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
                c.stime += f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            }
        }
    }
    c
}

/// Memory of the processes in kB: PSS summed (shared pages counted once) and RSS
/// summed (shared pages counted per process).
pub fn memory_kb(pids: &[u32]) -> (u64, u64) {
    let (mut pss, mut rss) = (0, 0);
    for pid in pids {
        if let Ok(s) = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) {
            pss += kb_field(&s, "Pss:");
        }
        if let Ok(s) = fs::read_to_string(format!("/proc/{pid}/status")) {
            rss += kb_field(&s, "VmRSS:");
        }
    }
    (pss, rss)
}

fn kb_field(s: &str, name: &str) -> u64 {
    s.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l[name.len()..].split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
