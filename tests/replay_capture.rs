//! The capture reader against third-party captures and crafted damaged files.

use std::fs::File;
use std::io::BufReader;

use presence_proxy::engine::Transport;
use presence_proxy::replay::framing::StartLine;
use presence_proxy::replay::{CaptureError, CaptureReader, CapturedMessage};

fn shared(name: &str) -> String {
    format!("{}/../shared/pcaps/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn read_all(bytes: &[u8]) -> Result<Vec<CapturedMessage>, CaptureError> {
    let mut r = CaptureReader::new(bytes)?;
    let mut out = Vec::new();
    while let Some(m) = r.next_message()? {
        out.push(m);
    }
    Ok(out)
}

fn first_line(m: &CapturedMessage) -> String {
    let end = m
        .data
        .iter()
        .position(|&b| b == b'\r')
        .unwrap_or(m.data.len());
    String::from_utf8_lossy(&m.data[..end]).into_owned()
}

#[test]
fn pcapplusplus_requests_capture_yields_its_four_requests() {
    let mut r = CaptureReader::new(BufReader::new(
        File::open(shared("pcapplusplus_sip_reqs_control.pcap")).unwrap(),
    ))
    .unwrap();
    let mut methods = Vec::new();
    while let Some(m) = r.next_message().unwrap() {
        assert_eq!(m.transport, Transport::Udp);
        methods.push(first_line(&m).split(' ').next().unwrap_or("").to_string());
    }
    assert_eq!(methods, ["INVITE", "CANCEL", "ACK", "BYE"]);
    assert_eq!(r.stats().sip_messages, 4);
}

#[test]
fn pcapplusplus_responses_capture_yields_its_seven_responses() {
    let bytes = std::fs::read(shared("pcapplusplus_sip_resp_control.pcap")).unwrap();
    let msgs = read_all(&bytes).unwrap();
    let codes: Vec<String> = msgs
        .iter()
        .map(|m| first_line(m)[8..11].to_string())
        .collect();
    assert_eq!(codes, ["100", "180", "200", "401", "401", "504", "503"]);
}

#[test]
fn a_truncated_capture_says_where() {
    let bytes = std::fs::read(shared("pcapplusplus_sip_resp_control.pcap")).unwrap();
    let cut = &bytes[..bytes.len() - 10];
    let err = read_all(cut).unwrap_err();
    match err {
        CaptureError::Truncated { packet, offset, .. } => {
            assert_eq!(packet, 7);
            assert!(offset > 24 && offset < cut.len() as u64, "offset {offset}");
        }
        other => panic!("expected Truncated, got {other}"),
    }
    assert!(err_text(cut).contains("packet 7"));
}

#[test]
fn a_corrupt_length_field_is_an_error_not_an_allocation() {
    let mut bytes = std::fs::read(shared("pcapplusplus_sip_reqs_control.pcap")).unwrap();
    // The first record's incl_len (little-endian file): claim 2 GB.
    bytes[24 + 8..24 + 12].copy_from_slice(&0x7FFF_FFFFu32.to_le_bytes());
    bytes.extend_from_slice(&vec![0u8; 17 << 20]);
    match read_all(&bytes).unwrap_err() {
        CaptureError::Corrupt { offset, packet, .. } => assert_eq!((offset, packet), (24, 1)),
        other => panic!("expected Corrupt, got {other}"),
    }
}

#[test]
fn not_a_capture_is_refused() {
    assert!(matches!(
        read_all(b"SIP/2.0 200 OK\r\n\r\n"),
        Err(CaptureError::NotACapture { .. })
    ));
    assert!(matches!(
        read_all(b""),
        Err(CaptureError::NotACapture { .. })
    ));
}

fn err_text(bytes: &[u8]) -> String {
    read_all(bytes)
        .map(|_| String::new())
        .unwrap_or_else(|e| e.to_string())
}

fn pcaps(name: &str) -> Vec<CapturedMessage> {
    let path = format!("{}/pcaps/{name}", env!("CARGO_MANIFEST_DIR"));
    read_all(&std::fs::read(path).unwrap()).unwrap()
}

fn summary(msgs: &[CapturedMessage]) -> Vec<String> {
    msgs.iter()
        .map(|m| match StartLine::of(&m.data) {
            Some(StartLine::Request(method)) => method.to_string(),
            Some(StartLine::Response(code)) => code.to_string(),
            None => "?".to_string(),
        })
        .collect()
}

#[test]
fn recorded_udp_and_tcp_flows_carry_the_same_38_messages() {
    let udp = pcaps("presence-udp.pcap");
    let tcp = pcaps("presence-tcp.pcapng");
    assert_eq!(udp.len(), 38);
    assert_eq!(summary(&udp), summary(&tcp));
    assert!(tcp
        .iter()
        .all(|m| m.transport == Transport::Tcp && m.conn.is_some()));
    // tshark: frame 1 at 1795316156.759420, and in the pcapng (if_tsresol 9)
    // frame 4 at 1795316161.879095688.
    assert_eq!((udp[0].packet, udp[0].time_us), (1, 1_795_316_156_759_420));
    assert_eq!((tcp[0].packet, tcp[0].time_us), (4, 1_795_316_161_879_095));
    // Every phone's REGISTER and SUBSCRIBE travel on one TCP connection.
    let bob: Vec<_> = tcp
        .iter()
        .filter(|m| m.src.port() == 5171 || m.dst.port() == 5171)
        .collect();
    assert!(bob.len() >= 8);
    assert!(bob.iter().all(|m| m.conn == bob[0].conn));
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    fn recorded() -> &'static [u8] {
        static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        BYTES.get_or_init(|| {
            std::fs::read(format!(
                "{}/pcaps/presence-tcp.pcapng",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any corruption of a real capture reads to the end or stops with an
        /// error that says where; it never panics and never loops.
        #[test]
        fn corrupted_captures_end_in_messages_or_a_located_error(
            flips in proptest::collection::vec((0usize..26_640, any::<u8>()), 1..40),
            cut in 0usize..26_640,
        ) {
            let mut bytes = recorded().to_vec();
            for (at, value) in flips {
                if at < bytes.len() {
                    bytes[at] = value;
                }
            }
            bytes.truncate(cut.max(1));
            match read_all(&bytes) {
                Ok(msgs) => prop_assert!(msgs.len() <= 36 * 4),
                Err(CaptureError::Truncated { offset, .. }) | Err(CaptureError::Corrupt { offset, .. }) => {
                    prop_assert!(offset <= bytes.len() as u64)
                }
                Err(_) => {}
            }
        }

        /// Arbitrary bytes after a valid pcap header are frames of garbage:
        /// counted, never fatal beyond a located error.
        #[test]
        fn garbage_frames_are_counted(frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..30), linktype in prop_oneof![Just(0u32), Just(1), Just(101), Just(108), Just(113), Just(276), Just(147)]) {
            let mut f = 0xA1B2_C3D4u32.to_le_bytes().to_vec();
            f.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0]);
            f.extend_from_slice(&linktype.to_le_bytes());
            for fr in &frames {
                f.extend_from_slice(&[0u8; 8]);
                f.extend_from_slice(&(fr.len() as u32).to_le_bytes());
                f.extend_from_slice(&(fr.len() as u32).to_le_bytes());
                f.extend_from_slice(fr);
            }
            let mut r = CaptureReader::new(f.as_slice()).unwrap();
            while r.next_message().unwrap().is_some() {}
            prop_assert_eq!(r.stats().packets, frames.len() as u64);
        }
    }
}
