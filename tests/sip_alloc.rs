//! The header index is inline: parsing allocates nothing (DESIGN.md "The wire
//! layer", issue 2 target). Counted with a global allocator that only counts on
//! the thread that asked, so the test harness's own threads do not interfere.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::Bytes;
use presence_proxy::sip::{parse, Limits, Message, MAX_HEADERS_CAPACITY};

struct Counting;

thread_local! {
    static ON: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ON.with(Cell::get) {
            COUNT.with(|c| c.set(c.get() + 1));
        }
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    COUNT.with(|c| c.set(0));
    ON.with(|o| o.set(true));
    let out = f();
    ON.with(|o| o.set(false));
    (out, COUNT.with(Cell::get))
}

const NOTIFY: &str = "NOTIFY sip:alice@192.0.2.10 SIP/2.0\r\n\
v: SIP/2.0/UDP 192.0.2.20;branch=z9hG4bK1, SIP/2.0/TCP 192.0.2.21;branch=z9hG4bK2\r\n\
Route: <sip:127.0.0.1;lr>\r\nMax-Forwards: 70\r\nf: <sip:bob@example.com>;tag=a\r\n\
t: <sip:alice@example.com>\r\n ;tag=b\r\ni: c1\r\nCSeq: 2 NOTIFY\r\no: presence\r\n\
Subscription-State: active;expires=60\r\nc: application/pidf+xml\r\nl: 5\r\n\r\nhello";

#[test]
fn parsing_allocates_nothing() {
    // Both a static buffer and a Vec-backed one, as a driver would hand over.
    for data in [
        Bytes::from_static(NOTIFY.as_bytes()),
        Bytes::from(NOTIFY.as_bytes().to_vec()),
    ] {
        let (m, n) = allocations_during(|| parse(data, &Limits::default()));
        let m = m.expect("parses");
        assert_eq!(n, 0, "parse allocated {n} times");
        let (vias, n) = allocations_during(|| {
            (
                m.vias().count(),
                m.routes().count(),
                m.to().and_then(|t| t.tag),
                m.event().map(|e| e.package),
            )
        });
        assert_eq!(n, 0, "accessors allocated {n} times");
        assert_eq!(vias.0, 2);
    }
}

#[test]
fn the_header_index_is_stored_inline() {
    // 96 entries of five 16-bit spans live inside Message itself; only the Bytes
    // handle points out.
    assert!(std::mem::size_of::<Message>() >= MAX_HEADERS_CAPACITY * 5 * 2);
    let (_, n) = allocations_during(|| {
        let m = parse(Bytes::from_static(NOTIFY.as_bytes()), &Limits::default()).expect("parses");
        let copy = m.clone();
        copy.headers().len()
    });
    assert_eq!(n, 0, "cloning a message from a static buffer allocated");
}

#[test]
fn forwarding_edits_allocate_a_fixed_few_buffers() {
    let m = parse(Bytes::from_static(NOTIFY.as_bytes()), &Limits::default()).expect("parses");
    let (out, n) = allocations_during(|| {
        m.edit()
            .push_via(b"SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKp")
            .set_max_forwards(69)
            .push_record_route(b"<sip:127.0.0.1;lr>")
            .pop_route()
            .finish()
    });
    // The edit list, the replacement bytes, the splice plan and the output.
    assert!(n <= 4, "forwarding edits allocated {n} times");
    assert!(out.starts_with(
        b"NOTIFY sip:alice@192.0.2.10 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKp\r\n"
    ));
}
