//! The synthetic population shared by the load and by both proxies' data.
//!
//! Owners `o{j}@example.com` (j < users, every one a user of presence-proxy with a
//! policy), watchers `w{p}@example.com`. Load pair `p` is watcher `w{p}` watching
//! owner `o{(p * 7919) % users}` (7919 is prime and coprime to 10^n, so each owner
//! is used once per `users` pairs), and exactly the pairs with `p % 10 == 7` (10 %)
//! are blocked. Each owner blocks exactly one watcher: the load watcher when its pair
//! is a blocked one, otherwise a decoy `w{DECOY + j}` the load never uses, so
//! presence-proxy's policy and Kamailio's htable both hold `users` block entries.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::Path;

pub const DOMAIN: &str = "example.com";
const DECOY: u64 = 10_000_000;
const STRIDE: u64 = 7919;

/// (watcher index, owner index, blocked) of load pair `p`.
pub fn pair(p: u64, users: u64) -> (u64, u64, bool) {
    (p, (p % users) * STRIDE % users, p % 10 == 7)
}

/// The watcher owner `j` blocks.
fn blocked_watcher_of(j: u64, users: u64) -> u64 {
    // Invert j = p * STRIDE mod users for p < users by search over the stride group:
    // cheap enough once per owner with the precomputed inverse below.
    let p = j * inverse(STRIDE, users) % users;
    if pair(p, users).2 {
        p
    } else {
        DECOY + j
    }
}

/// Modular inverse of `a` mod `m` (extended Euclid); `a` and `m` coprime.
fn inverse(a: u64, m: u64) -> u64 {
    let (mut t, mut new_t, mut r, mut new_r) = (0i128, 1i128, m as i128, (a % m) as i128);
    while new_r != 0 {
        let q = r / new_r;
        (t, new_t) = (new_t, t - q * new_t);
        (r, new_r) = (new_r, r - q * new_r);
    }
    if t < 0 {
        t += m as i128;
    }
    t as u64
}

/// Writes `dir/policy.json` (presence-proxy policy document, version 1) and
/// `dir/kam/db/blocked` + `dir/kam/db/version` (db_text tables for Kamailio's
/// htable: key `owner@domain:watcher@domain`, the NOTIFY's From:To).
pub fn write(dir: &Path, users: u64) -> anyhow::Result<()> {
    anyhow::ensure!(
        users >= 10 && users % 10 == 0,
        "--users must be a positive multiple of 10"
    );
    anyhow::ensure!(users % 7919 != 0, "--users must not be a multiple of 7919");
    fs::create_dir_all(dir.join("kam/db"))?;
    let mut pol = BufWriter::new(fs::File::create(dir.join("policy.json"))?);
    let mut kam = BufWriter::new(fs::File::create(dir.join("kam/db/blocked"))?);
    writeln!(
        kam,
        "key_name(str) key_type(int) value_type(int) key_value(str) expires(int)"
    )?;
    write!(
        pol,
        "{{\"version\":1,\"org\":{{\"local_domains\":[\"{DOMAIN}\"],\"federated_domains\":[],\
         \"classes\":{{\"default\":{{\"auto_authorize\":true,\"contact_limit\":100}}}},\
         \"pending_view\":\"hold\",\"pending_timeout_s\":86400}},\"users\":["
    )?;
    for j in 0..users {
        let w = blocked_watcher_of(j, users);
        if j > 0 {
            pol.write_all(b",")?;
        }
        write!(
            pol,
            "\n{{\"aor\":\"o{j}@{DOMAIN}\",\"class\":\"default\",\"default_internal\":\"allow\",\
             \"default_external\":\"block\",\"exceptions\":{{\"users\":[{{\"aor\":\"w{w}@{DOMAIN}\",\
             \"action\":\"block\"}}],\"domains\":[]}},\"contacts\":[],\"refresh_interval_s\":30}}"
        )?;
        // db_text separates columns with ':', escaped in values as "\:".
        writeln!(kam, "o{j}@{DOMAIN}\\:w{w}@{DOMAIN}:0:1:1:0")?;
    }
    pol.write_all(b"\n]}\n")?;
    pol.flush()?;
    kam.flush()?;
    fs::write(
        dir.join("kam/db/version"),
        "table_name(str) table_version(int)\nblocked:2\n",
    )?;
    // The document must be what presence-proxy's importer reads (issue 3 contract).
    let text = fs::read_to_string(dir.join("policy.json"))?;
    let doc: presence_proxy::policy::PolicyDocument = serde_json::from_str(&text)?;
    anyhow::ensure!(
        doc.users.len() as u64 == users,
        "policy document has {} users",
        doc.users.len()
    );
    Ok(())
}

/// Checks the pair mapping: each owner is blocked exactly once, 10 % of load pairs are.
pub fn selftest() -> Result<(), String> {
    let users = 1000;
    let mut seen = vec![false; users as usize];
    let mut blocked = 0;
    for p in 0..users {
        let (_, o, b) = pair(p, users);
        if seen[o as usize] {
            return Err(format!("gen selftest: owner {o} used twice"));
        }
        seen[o as usize] = true;
        if b {
            blocked += 1;
            if blocked_watcher_of(o, users) != p {
                return Err(format!(
                    "gen selftest: owner {o} does not block its pair {p}"
                ));
            }
        } else if blocked_watcher_of(o, users) < DECOY {
            return Err(format!(
                "gen selftest: owner {o} blocks a load watcher it should not"
            ));
        }
    }
    if blocked != users / 10 {
        return Err(format!("gen selftest: {blocked} blocked pairs of {users}"));
    }
    Ok(())
}
