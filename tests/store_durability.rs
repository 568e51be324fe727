//! Durability: an acknowledged change survives `kill -9`, and no change is ever
//! half-applied (DESIGN.md "The store": written, flushed, then acknowledged; one
//! sled transaction per change).
//!
//! `changes_applied_in_a_loop_survive_sigkill`: a child process (`presence-proxy
//! policy apply`, one long-lived store) applies multi-record changes in a loop and
//! prints each one it has acknowledged; it is killed with SIGKILL at a random
//! moment, 20 times. Each change stamps the org and all 25 users with its number N
//! and adds an exception `markN`. After each kill the store is reopened and checked:
//! every acknowledged change is there (every `markN` up to the last acknowledged N)
//! and none is half-applied (the org and every user carry the same N).
//!
//! `policy_commands_survive_sigkill`: the same with one `policy` command per change
//! (a whole-document import, then an `except`), as an operator's script runs them.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use presence_proxy::policy::{Action, Aor, Change, Domain, Org};
use presence_proxy::store::{SledStore, Store, StoreError};
use rand::Rng;

const USERS: usize = 25;
const ROUNDS: usize = 20;
const CLI_ROUNDS: usize = 6;

/// SIGKILL the child's whole process group (the child and anything it started),
/// mid-write, then reap it.
fn kill_group(child: &mut Child) {
    let pgid = child.id() as libc::pid_t;
    // SAFETY: plain syscall on a process group this test created.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
    let _ = child.wait();
}

/// The child's stdout lines, as they come.
fn read_lines(stdout: std::process::ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for the child's first acknowledgement (so every round tests something,
/// however loaded the machine), lets it run `ms` more milliseconds, SIGKILLs it,
/// and returns every line it printed.
fn kill_at_random_after_first_ack(
    child: &mut Child,
    acks: &mpsc::Receiver<String>,
    ms: u64,
    round: usize,
) -> Vec<String> {
    let first = acks
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("round {round}: the child acknowledged nothing: {e}"));
    std::thread::sleep(Duration::from_millis(ms));
    kill_group(child);
    let mut lines = vec![first];
    // The reader ends at EOF, once the killed child's pipe closes.
    lines.extend(acks.iter());
    lines
}

fn aor(s: &str) -> Aor {
    Aor::parse(s).unwrap()
}

/// Change number `n`: one transaction over the org and every user.
fn stamp(n: u64) -> Vec<Change> {
    let org = Org {
        local_domains: vec![Domain::parse("example.com").unwrap()],
        pending_timeout_s: n,
        ..Org::default()
    };
    let mut changes = vec![Change::SetOrg { org }];
    for u in 0..USERS {
        changes.push(Change::SetRefreshInterval {
            owner: aor(&format!("u{u}@example.com")),
            seconds: 7 + (n % 3000) as u32,
        });
    }
    changes.push(Change::AddUserException {
        owner: aor(&format!("u{}@example.com", n as usize % USERS)),
        watcher: aor(&format!("mark{n}@x.org")),
        action: Action::Block,
    });
    changes
}

/// Checks the store after a kill; returns the number of the last change in it.
fn check_stamps(store: &SledStore, last_ack: u64, round: usize) -> u64 {
    let users = store.users();
    let n = if users.is_empty() {
        0
    } else {
        store.org().pending_timeout_s
    };
    assert!(
        n == last_ack || n == last_ack + 1,
        "round {round}: store holds change {n}, the last acknowledged was {last_ack}"
    );
    if n == 0 {
        return 0;
    }
    assert_eq!(
        users.len(),
        USERS,
        "round {round}: half-applied: {} users",
        users.len()
    );
    for u in &users {
        assert_eq!(
            u64::from(u.refresh_interval_s),
            7 + n % 3000,
            "round {round}: {} is not at change {n} like the org: half-applied",
            u.aor
        );
    }
    for m in 1..=n {
        let owner = store
            .user(&aor(&format!("u{}@example.com", m as usize % USERS)))
            .unwrap();
        assert!(
            owner
                .user_exception(&aor(&format!("mark{m}@x.org")))
                .is_some(),
            "round {round}: change {m} (acknowledged, or before one that was) is lost"
        );
    }
    n
}

#[test]
fn changes_applied_in_a_loop_survive_sigkill() {
    let bin = env!("CARGO_BIN_EXE_presence-proxy");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut rng = rand::thread_rng();
    let mut next = 1u64;
    let mut acks_total = 0usize;
    for round in 0..ROUNDS {
        let mut child = Command::new(bin)
            .args(["policy", "--data"])
            .arg(&data)
            .arg("apply")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let first = next;
        let writer = std::thread::spawn(move || {
            for n in first.. {
                let line = serde_json::to_string(&stamp(n)).unwrap();
                if writeln!(stdin, "{line}").is_err() {
                    break; // killed
                }
            }
        });
        let stdout = child.stdout.take().unwrap();
        let acks_rx = read_lines(stdout);

        let acks =
            kill_at_random_after_first_ack(&mut child, &acks_rx, rng.gen_range(0..800), round);
        writer.join().unwrap();
        acks_total += acks.len();
        // `applied K` acknowledges the K-th line of this round, change first + K - 1.
        let last_ack = acks
            .iter()
            .filter_map(|l| {
                l.strip_prefix("applied ")
                    .and_then(|k| k.parse::<u64>().ok())
            })
            .max()
            .map_or(first - 1, |k| first + k - 1);

        let store = reopen(&data, round);
        let n = check_stamps(&store, last_ack, round);
        drop(store);
        next = n + 1;
    }
    eprintln!("{acks_total} acknowledged changes over {ROUNDS} kills");
    assert!(
        acks_total >= ROUNDS,
        "the child acknowledged only {acks_total} changes in {ROUNDS} rounds"
    );
}

/// A policy document of generation `GEN` (the shell substitutes it): the org's
/// pending timeout is GEN, every user's refresh interval is 7 + GEN and every user
/// blocks `genGEN@x.org`.
fn template() -> String {
    let users: Vec<String> = (0..USERS)
        .map(|i| {
            format!(
                r#"{{"aor":"u{i}@example.com","refresh_interval_s":REFRESH,
                   "exceptions":{{"users":[{{"aor":"genGEN@x.org","action":"block"}}]}}}}"#
            )
        })
        .collect();
    format!(
        r#"{{"version":1,"org":{{"local_domains":["example.com"],"pending_timeout_s":GEN}},"users":[{}]}}"#,
        users.join(",")
    )
}

/// What the store holds after a kill, checked for internal consistency.
/// Returns the generation (0 when nothing was ever imported).
fn check_consistent(store: &SledStore) -> u64 {
    let users = store.users();
    if users.is_empty() {
        return 0;
    }
    let generation = store.org().pending_timeout_s;
    assert_eq!(
        users.len(),
        USERS,
        "a partial import: {} users",
        users.len()
    );
    let marker = Aor::parse(&format!("gen{generation}@x.org")).unwrap();
    for u in &users {
        assert_eq!(
            u64::from(u.refresh_interval_s),
            7 + generation,
            "{} is from another generation than the org ({generation}): half-applied import",
            u.aor
        );
        assert!(
            u.user_exception(&marker).is_some(),
            "{} lacks the generation {generation} exception",
            u.aor
        );
    }
    generation
}

/// Opens the store, waiting while a killed grandchild (the `policy` command; `wait`
/// only reaps the shell) has not released sled's lock yet.
fn reopen(data: &std::path::Path, round: usize) -> SledStore {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match SledStore::open(data) {
            Ok(s) => return s,
            Err(StoreError::Locked(_)) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => panic!("round {round}: the store does not reopen after SIGKILL: {e}"),
        }
    }
}

#[test]
fn policy_commands_survive_sigkill() {
    let bin = env!("CARGO_BIN_EXE_presence-proxy");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let tmpl = dir.path().join("doc.tmpl");
    std::fs::write(&tmpl, template()).unwrap();

    let script = r#"
        i=$START
        while [ $i -lt 3500 ]; do
          sed -e "s/REFRESH/$((7 + i))/g" -e "s/GEN/$i/g" "$TMPL" > "$DOC"
          "$BIN" policy --data "$DATA" import "$DOC" > /dev/null || exit 1
          echo "import $i"
          "$BIN" policy --data "$DATA" except u0@example.com user "mark$i@x.org" block || exit 1
          echo "except $i"
          i=$((i + 1))
        done
    "#;

    let mut rng = rand::thread_rng();
    let mut next = 1u64;
    let mut acks_total = 0usize;
    for round in 0..CLI_ROUNDS {
        let mut child = Command::new("bash")
            .arg("-c")
            .arg(script)
            .env("START", next.to_string())
            .env("BIN", bin)
            .env("DATA", &data)
            .env("TMPL", &tmpl)
            .env("DOC", dir.path().join("doc.json"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let acks_rx = read_lines(stdout);

        let acks =
            kill_at_random_after_first_ack(&mut child, &acks_rx, rng.gen_range(0..1200), round);
        acks_total += acks.len();

        let last_import = acks
            .iter()
            .filter_map(|l| {
                l.strip_prefix("import ")
                    .and_then(|n| n.parse::<u64>().ok())
            })
            .max()
            .unwrap_or(next - 1);
        let last_except = acks
            .iter()
            .filter_map(|l| {
                l.strip_prefix("except ")
                    .and_then(|n| n.parse::<u64>().ok())
            })
            .max();

        let store = reopen(&data, round);
        let generation = check_consistent(&store);
        assert!(
            generation == last_import || generation == last_import + 1,
            "round {round}: store is at generation {generation}, last acknowledged import was {last_import}"
        );
        if let Some(e) = last_except {
            if generation == e {
                let u0 = store.user(&Aor::parse("u0@example.com").unwrap()).unwrap();
                assert!(
                    u0.user_exception(&Aor::parse(&format!("mark{e}@x.org")).unwrap())
                        .is_some(),
                    "round {round}: acknowledged exception mark{e} is lost"
                );
            }
        }
        drop(store);
        next = generation + 1;
    }
    eprintln!("{acks_total} acknowledged policy commands over {CLI_ROUNDS} kills");
    assert!(
        acks_total >= CLI_ROUNDS,
        "the child acknowledged only {acks_total} changes in {CLI_ROUNDS} rounds"
    );
}
