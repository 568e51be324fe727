//! Helpers shared by the tests that run the real `presence-proxy` binary: start it,
//! wait until it says where it listens, stop it with SIGTERM; run a test body in a
//! network namespace of its own.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_presence-proxy");

/// A running proxy process. Killed when dropped (tests that check the exit
/// status call [`Proxy::stop`]).
pub struct Proxy {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    pub data: tempfile::TempDir,
}

impl Proxy {
    /// Starts the binary with `args` plus a fresh `--data` directory and an
    /// ephemeral `--http` port, and waits for its "listening on" line.
    pub fn start(args: &[&str]) -> Proxy {
        Proxy::start_with_data(tempfile::tempdir().expect("temp dir"), args)
    }

    /// [`Proxy::start`] on a data directory prepared beforehand (a policy imported).
    pub fn start_with_data(data: tempfile::TempDir, args: &[&str]) -> Proxy {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .arg("--data")
            .arg(data.path())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if !args.contains(&"--http") {
            cmd.args(["--http", "127.0.0.1:0"]);
        }
        if !args.contains(&"--log-level") {
            cmd.args(["--log-level", "info"]);
        }
        let mut child = cmd.spawn().expect("start presence-proxy");
        let stderr = child.stderr.take().expect("stderr piped");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if line.contains("listening on udp:") {
                        let _ = ready_tx.send(());
                    }
                    log.lock().unwrap().push(line);
                }
            });
        }
        let mut proxy = Proxy { child, log, data };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if ready_rx.recv_timeout(Duration::from_millis(50)).is_ok() {
                return proxy;
            }
            if let Ok(Some(status)) = proxy.child.try_wait() {
                panic!(
                    "presence-proxy exited with {status} before it was ready:\n{}",
                    proxy.log()
                );
            }
            if Instant::now() > deadline {
                panic!("presence-proxy not ready after 30 s:\n{}", proxy.log());
            }
        }
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then waits (at most 10 s) for it to exit.
    pub fn stop(self) -> ExitStatus {
        self.stop_keeping_data().0
    }

    /// [`Proxy::stop`], handing back the data directory to look at afterwards.
    pub fn stop_keeping_data(mut self) -> (ExitStatus, tempfile::TempDir) {
        let status = self.terminate();
        let data = std::mem::replace(&mut self.data, tempfile::tempdir().expect("temp dir"));
        (status, data)
    }

    fn terminate(&mut self) -> ExitStatus {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = self.child.kill();
                    panic!(
                        "presence-proxy did not exit within 10 s of SIGTERM:\n{}",
                        self.log()
                    );
                }
            }
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `f` on a thread inside a new network namespace where only loopback is up:
/// the sockets it opens and the processes it starts cannot reach any real network,
/// so messages naming outside addresses (192.0.2.x …) go nowhere. Needs root;
/// fails loudly otherwise.
pub fn in_netns<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    let handle = std::thread::spawn(move || {
        // SAFETY: unshare(2) affects only this thread's network namespace; the
        // children it starts inherit it.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(
            rc,
            0,
            "unshare(CLONE_NEWNET) failed (needs root): {}",
            std::io::Error::last_os_error()
        );
        let status = Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status()
            .expect("run ip (iproute2)");
        assert!(status.success(), "ip link set lo up failed");
        f()
    });
    match handle.join() {
        Ok(r) => r,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Waits for `cond` for at most `timeout`.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}
