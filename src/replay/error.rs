//! Why a capture could not be read: always with the place in the file.

/// A capture that cannot be read on. Packets that are merely not SIP, or not
/// parseable, are counted in [`super::capture::CaptureStats`] instead.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("not a pcap or pcapng file: {reason}")]
    NotACapture { reason: String },
    #[error("capture truncated at byte {offset} (packet {packet}): the last record is incomplete ({have} bytes left)")]
    Truncated {
        offset: u64,
        packet: u64,
        have: usize,
    },
    #[error("capture corrupt at byte {offset} (packet {packet}): {reason}")]
    Corrupt {
        offset: u64,
        packet: u64,
        reason: String,
    },
    #[error("reading the capture failed at byte {offset}: {source}")]
    Io { offset: u64, source: std::io::Error },
}
