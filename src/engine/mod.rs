//! The protocol engine: routing (RFC 3261 §16, stateless with dialog awareness)
//! and presence enforcement. Sans-IO in the manner of `quinn-proto` and `str0m`:
//! it owns no socket, spawns no task and reads no clock. Input is a [`Received`]
//! message with its source and the time; output is [`Transmit`]s pushed into the
//! caller's buffer, plus the next deadline from [`Engine::poll_timeout`].
//!
//! The live driver, the pcap replay and the tests all run this same engine.

use std::net::SocketAddr;

use bytes::Bytes;

/// Transport protocol of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Udp,
    Tcp,
}

/// A driver's handle for one TCP connection, so replies and requests for a phone
/// reuse the connection it opened (RFC 3261 §18.2.2, RFC 5923 reuse).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId(pub u64);

/// One whole SIP message as the driver received it (a UDP datagram, or one framed
/// message from a TCP stream).
#[derive(Debug, Clone)]
pub struct Received {
    pub data: Bytes,
    pub source: SocketAddr,
    /// The local address it arrived on.
    pub local: SocketAddr,
    pub transport: Transport,
    /// The TCP connection it came on.
    pub conn: Option<ConnId>,
}

/// One message the driver must send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub data: Bytes,
    pub destination: SocketAddr,
    pub transport: Transport,
    /// Send on this TCP connection when it is still open; otherwise (or when
    /// `None` over TCP) the driver opens or reuses one to `destination`.
    pub conn: Option<ConnId>,
}

mod outcome;
pub mod presence;
pub use outcome::{Direction, Handled, Outcome};
