//! The live driver: tokio UDP and TCP sockets around the sans-IO engine.
//!
//! One receive loop per UDP socket, one accept loop per TCP listener, one task per
//! TCP connection, and a timer task that runs the engine's deadlines. Every loop
//! hands what it received to the shared `Arc<Engine>` and sends what the engine
//! returns. A bad packet, a failed send or a dropped connection is logged and
//! counted; it never ends a loop. UDP moves datagrams in batches (`mmsg`): a batch
//! of receptions goes through the engine one by one, and all it answers leaves in
//! one `sendmmsg`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use dashmap::DashMap;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::engine::{ConnId, DropReason, Engine, Transmit, Transport};

mod bind;
mod busy_poll;
mod mmsg;
pub mod realtime;
mod tcp;
mod udp;
mod udp_io;

pub use bind::{bind, Listener};

/// The clock the engine never reads itself: unix milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The longest the timer task sleeps: a deadline the engine sets while the timer
/// sleeps is at most this late.
const TIMER_TICK: Duration = Duration::from_millis(50);

/// Driver settings (from `[sip.limits]`).
#[derive(Debug, Clone)]
pub struct DriverConfig {
    pub max_message: usize,
    pub max_connections: usize,
    pub tcp_idle_timeout: Duration,
    /// How long the runtime keeps polling after traffic instead of sleeping
    /// (`sip.busy_poll_us`; zero: never spins). See [`busy_poll`].
    pub busy_poll: Duration,
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig {
            max_message: 65_535,
            max_connections: 4_096,
            tcp_idle_timeout: Duration::from_secs(600),
            busy_poll: Duration::ZERO,
        }
    }
}

/// What every task of the driver shares.
pub(crate) struct Shared {
    engine: Arc<Engine>,
    cfg: DriverConfig,
    /// The socket UDP datagrams to IPv4 / IPv6 destinations leave from: the first
    /// listener of that family, else the first listener. Chosen once at start, from
    /// the bound addresses (a `getsockname` per send was 4 % of the CPU).
    udp_v4: Option<Arc<udp_io::UdpIo>>,
    udp_v6: Option<Arc<udp_io::UdpIo>>,
    conns: DashMap<ConnId, tcp::ConnHandle, ahash::RandomState>,
    by_remote: DashMap<SocketAddr, ConnId, ahash::RandomState>,
    next_conn: AtomicU64,
    shutdown: watch::Receiver<bool>,
    busy_poll: Option<busy_poll::BusyPoll>,
}

impl Shared {
    /// A receive path got traffic (see [`busy_poll`]).
    fn touch(&self) {
        if let Some(b) = &self.busy_poll {
            b.touch();
        }
    }

    fn register(&self, remote: SocketAddr) -> (ConnId, mpsc::Receiver<Bytes>) {
        let id = ConnId(self.next_conn.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = mpsc::channel(tcp::QUEUE);
        self.conns.insert(id, tcp::ConnHandle { tx });
        self.by_remote.insert(remote, id);
        (id, rx)
    }

    fn unregister(&self, id: ConnId, remote: SocketAddr) {
        self.conns.remove(&id);
        self.by_remote.remove_if(&remote, |_, v| *v == id);
        self.engine.connection_closed(id);
    }

    /// Sends everything in `out` (emptying it): TCP messages to their connection's
    /// queue, UDP datagrams a batch per system call (`outbox` is reused scratch).
    async fn dispatch(self: &Arc<Self>, out: &mut Vec<Transmit>, outbox: &mut Outbox) {
        for t in out.drain(..) {
            match t.transport {
                Transport::Udp if t.destination.is_ipv4() => outbox.v4.push(t),
                Transport::Udp => outbox.v6.push(t),
                Transport::Tcp => tcp::send(self, t.conn, t.destination, t.data),
            }
        }
        for (socket, items) in [
            (&self.udp_v4, &mut outbox.v4),
            (&self.udp_v6, &mut outbox.v6),
        ] {
            if items.is_empty() {
                continue;
            }
            match socket {
                Some(socket) => udp::send_all(self, socket, items).await,
                None => {
                    for _ in items.drain(..) {
                        self.engine.metrics().dropped(DropReason::SendFailed);
                    }
                }
            }
        }
    }
}

/// UDP datagrams of one dispatch, by the family of their destination; kept by each
/// loop so the vectors' capacity is reused.
#[derive(Default)]
pub(crate) struct Outbox {
    v4: Vec<Transmit>,
    v6: Vec<Transmit>,
}

/// A running driver; [`Driver::shutdown`] stops it.
pub struct Driver {
    tasks: JoinSet<()>,
    stop: watch::Sender<bool>,
    local: Vec<SocketAddr>,
}

impl Driver {
    /// Starts the loops on already bound sockets (see [`bind`]), so the engine can
    /// be built knowing the bound addresses first.
    pub fn start(engine: Arc<Engine>, listeners: Vec<Listener>, cfg: DriverConfig) -> Driver {
        let (stop, shutdown) = watch::channel(false);
        let local = listeners.iter().map(|l| l.local).collect();
        let mut udp_sockets = Vec::new();
        let mut tcp_listeners = Vec::new();
        for l in listeners {
            udp_sockets.push((Arc::new(l.udp), l.local));
            tcp_listeners.push(l.tcp);
        }
        let of_family = |v4: bool| {
            udp_sockets
                .iter()
                .find(|(_, local)| local.is_ipv4() == v4)
                .or_else(|| udp_sockets.first())
                .map(|(s, _)| s.clone())
        };
        let shared = Arc::new(Shared {
            engine,
            udp_v4: of_family(true),
            udp_v6: of_family(false),
            conns: DashMap::default(),
            by_remote: DashMap::default(),
            // Connection ids travel in our Via (`engine::routing::CONN_PARAM`); a
            // random start keeps a response that outlived a restart from
            // matching a new connection.
            next_conn: AtomicU64::new(rand::random::<u64>() >> 16),
            busy_poll: busy_poll::BusyPoll::new(cfg.busy_poll),
            cfg,
            shutdown,
        });
        let mut tasks = JoinSet::new();
        for (s, local) in udp_sockets {
            tasks.spawn(udp::receive_loop(shared.clone(), s, local));
        }
        for l in tcp_listeners {
            tasks.spawn(tcp::accept_loop(shared.clone(), l));
        }
        tasks.spawn(timer_loop(shared.clone()));
        tasks.spawn(write_behind_loop(shared.clone()));
        if shared.busy_poll.is_some() {
            let shared = shared.clone();
            tasks.spawn(async move {
                if let Some(b) = &shared.busy_poll {
                    b.run(shared.shutdown.clone()).await;
                }
            });
        }
        tasks.spawn(policy_loop(shared));
        Driver { tasks, stop, local }
    }

    /// The bound listen addresses.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local
    }

    /// Stops every loop and connection.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        let deadline = tokio::time::sleep(Duration::from_secs(2));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => break,
                next = self.tasks.join_next() => if next.is_none() { break },
            }
        }
        self.tasks.abort_all();
    }
}

/// Forwards every acknowledged store change to the engine, so live dialogs see a
/// new decision within about a second (DESIGN.md "Decisions change").
async fn policy_loop(shared: Arc<Shared>) {
    use tokio::sync::broadcast::error::RecvError;
    let mut events = shared.engine.store().subscribe();
    let mut shutdown = shared.shutdown.clone();
    let mut out = Vec::new();
    let mut outbox = Outbox::default();
    loop {
        let owner = tokio::select! {
            _ = shutdown.changed() => return,
            ev = events.recv() => match ev {
                Ok(crate::store::StoreEvent::Policy { owner }) => owner,
                Ok(crate::store::StoreEvent::Pending(_)) => continue,
                // Missed events: re-evaluate everyone.
                Err(RecvError::Lagged(_)) => None,
                Err(RecvError::Closed) => return,
            },
        };
        shared
            .engine
            .policy_changed(now_ms(), owner.as_ref(), &mut out);
        shared.dispatch(&mut out, &mut outbox).await;
    }
}

/// How often write-behind work is done: the learned contacts queued in that time
/// go in one store transaction and flush, and store writes made without a flush
/// (pending refreshes) are flushed. A crash loses at most this much of either.
const WRITE_BEHIND_TICK: Duration = Duration::from_millis(100);

/// Runs [`Engine::write_behind`] on a blocking thread, never on the packet path.
/// What waits at shutdown is written before the loop ends.
async fn write_behind_loop(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.clone();
    loop {
        let stopping = tokio::select! {
            _ = shutdown.changed() => true,
            _ = tokio::time::sleep(WRITE_BEHIND_TICK) => false,
        };
        if shared.engine.write_behind_waiting() {
            let engine = shared.engine.clone();
            let done = tokio::task::spawn_blocking(move || engine.write_behind()).await;
            match done {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "flushing deferred store writes failed"),
                Err(e) => tracing::warn!(error = %e, "write-behind task failed"),
            }
        }
        if stopping {
            return;
        }
    }
}

/// Runs the engine's deadlines (retransmissions, expiries).
async fn timer_loop(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.clone();
    let mut out = Vec::new();
    let mut outbox = Outbox::default();
    loop {
        let now = now_ms();
        let wait = match shared.engine.poll_timeout() {
            Some(t) if t <= now => {
                shared.engine.handle_timeout(now, &mut out);
                shared.dispatch(&mut out, &mut outbox).await;
                // An engine that leaves the same deadline due must not make this
                // loop spin: give it a tick.
                if shared.engine.poll_timeout().is_some_and(|t| t <= now) {
                    TIMER_TICK
                } else {
                    continue;
                }
            }
            Some(t) => Duration::from_millis(t - now).min(TIMER_TICK),
            None => TIMER_TICK,
        };
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
