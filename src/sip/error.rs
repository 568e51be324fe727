//! Why a message was refused, and the 400 reason phrase that says so.

/// A parse failure. Every variant is a distinct cause so the reason phrase of the
/// `400 Bad Request` (RFC 3261 §21.4.1) tells the sender what was wrong, and the
/// counters can tell limits from malformed input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("message of {size} bytes exceeds the limit of {limit}")]
    MessageTooLarge { size: usize, limit: usize },
    #[error("more than {limit} header lines")]
    TooManyHeaders { limit: usize },
    #[error("a line is longer than {limit} bytes")]
    LineTooLong { limit: usize },
    #[error("empty message")]
    Empty,
    #[error("malformed Request-Line")]
    BadRequestLine,
    #[error("malformed Status-Line")]
    BadStatusLine,
    #[error("malformed status code")]
    BadStatusCode,
    #[error("unsupported SIP version")]
    BadVersion,
    #[error("malformed Request-URI: {0}")]
    BadRequestUri(&'static str),
    #[error("malformed header line")]
    BadHeaderLine,
    #[error("malformed {0} header")]
    BadHeader(&'static str),
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    #[error("more than one {0} header value")]
    DuplicateHeader(&'static str),
    #[error("malformed Content-Length")]
    BadContentLength,
    #[error("body shorter than Content-Length")]
    BodyTruncated,
    #[error("CSeq method does not match the request method")]
    CSeqMismatch,
    #[error("no empty line ends the headers")]
    MissingEmptyLine,
    #[error("malformed URI")]
    BadUri,
}

impl ParseError {
    /// The reason phrase for the `400 Bad Request` answering a request that failed
    /// this way.
    pub fn reason(&self) -> &'static str {
        use ParseError::*;
        match self {
            MessageTooLarge { .. } => "Bad Request - Message Too Large",
            TooManyHeaders { .. } => "Bad Request - Too Many Headers",
            LineTooLong { .. } => "Bad Request - Line Too Long",
            Empty => "Bad Request - Empty Message",
            BadRequestLine => "Bad Request - Malformed Request-Line",
            BadStatusLine => "Bad Request - Malformed Status-Line",
            BadStatusCode => "Bad Request - Malformed Status Code",
            BadVersion => "Bad Request - Unsupported SIP Version",
            BadRequestUri(_) => "Bad Request - Malformed Request-URI",
            BadHeaderLine => "Bad Request - Malformed Header Line",
            BadHeader(name) => malformed_phrase(name),
            MissingHeader(name) => missing_phrase(name),
            DuplicateHeader(name) => duplicate_phrase(name),
            BadContentLength => "Bad Request - Malformed Content-Length",
            BodyTruncated => "Bad Request - Body Shorter Than Content-Length",
            CSeqMismatch => "Bad Request - CSeq Method Mismatch",
            MissingEmptyLine => "Bad Request - Headers Not Terminated",
            BadUri => "Bad Request - Malformed URI",
        }
    }

    /// The status code a UAS or proxy answers with: 505 for an unknown SIP version
    /// (RFC 3261 §21.5.7, RFC 4475 §3.1.2.16), 513 for an oversized message
    /// (§21.5.11), 400 for everything else.
    pub fn status(&self) -> u16 {
        match self {
            ParseError::BadVersion => 505,
            ParseError::MessageTooLarge { .. } => 513,
            _ => 400,
        }
    }
}

fn malformed_phrase(name: &str) -> &'static str {
    match name {
        "Via" => "Bad Request - Malformed Via",
        "From" => "Bad Request - Malformed From",
        "To" => "Bad Request - Malformed To",
        "Call-ID" => "Bad Request - Malformed Call-ID",
        "CSeq" => "Bad Request - Malformed CSeq",
        "Max-Forwards" => "Bad Request - Malformed Max-Forwards",
        "Contact" => "Bad Request - Malformed Contact",
        "Route" => "Bad Request - Malformed Route",
        "Record-Route" => "Bad Request - Malformed Record-Route",
        "Content-Type" => "Bad Request - Malformed Content-Type",
        "Event" => "Bad Request - Malformed Event",
        "Expires" => "Bad Request - Malformed Expires",
        "Subscription-State" => "Bad Request - Malformed Subscription-State",
        "Date" => "Bad Request - Malformed Date",
        "P-Asserted-Identity" => "Bad Request - Malformed P-Asserted-Identity",
        _ => "Bad Request - Malformed Header",
    }
}

fn missing_phrase(name: &str) -> &'static str {
    match name {
        "Via" => "Bad Request - Missing Via",
        "From" => "Bad Request - Missing From",
        "To" => "Bad Request - Missing To",
        "Call-ID" => "Bad Request - Missing Call-ID",
        "CSeq" => "Bad Request - Missing CSeq",
        "Max-Forwards" => "Bad Request - Missing Max-Forwards",
        _ => "Bad Request - Missing Header",
    }
}

fn duplicate_phrase(name: &str) -> &'static str {
    match name {
        "From" => "Bad Request - Multiple From",
        "To" => "Bad Request - Multiple To",
        "Call-ID" => "Bad Request - Multiple Call-ID",
        "CSeq" => "Bad Request - Multiple CSeq",
        "Max-Forwards" => "Bad Request - Multiple Max-Forwards",
        "Content-Length" => "Bad Request - Multiple Content-Length",
        "Content-Type" => "Bad Request - Multiple Content-Type",
        "Expires" => "Bad Request - Multiple Expires",
        "Event" => "Bad Request - Multiple Event",
        _ => "Bad Request - Multiple Single-Value Header",
    }
}
