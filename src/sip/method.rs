//! SIP request methods.

/// A request method. `Other` covers extension methods (RFC 3261 §7.1 allows any
/// token); [`crate::sip::Message::method_bytes`] gives their name.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Method {
    Register,
    Invite,
    Ack,
    Bye,
    Cancel,
    Options,
    Subscribe,
    Notify,
    Publish,
    Message,
    Refer,
    Info,
    Update,
    Prack,
    Other,
}

impl Method {
    /// Method names are case-sensitive (RFC 3261 §7.1): `invite` is an extension
    /// method, not INVITE.
    pub fn from_bytes(b: &[u8]) -> Method {
        match b {
            b"REGISTER" => Method::Register,
            b"INVITE" => Method::Invite,
            b"ACK" => Method::Ack,
            b"BYE" => Method::Bye,
            b"CANCEL" => Method::Cancel,
            b"OPTIONS" => Method::Options,
            b"SUBSCRIBE" => Method::Subscribe,
            b"NOTIFY" => Method::Notify,
            b"PUBLISH" => Method::Publish,
            b"MESSAGE" => Method::Message,
            b"REFER" => Method::Refer,
            b"INFO" => Method::Info,
            b"UPDATE" => Method::Update,
            b"PRACK" => Method::Prack,
            _ => Method::Other,
        }
    }

    /// The canonical name; `None` for [`Method::Other`].
    pub fn as_str(self) -> Option<&'static str> {
        Some(match self {
            Method::Register => "REGISTER",
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Publish => "PUBLISH",
            Method::Message => "MESSAGE",
            Method::Refer => "REFER",
            Method::Info => "INFO",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Other => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_names_are_case_sensitive() {
        assert_eq!(Method::from_bytes(b"SUBSCRIBE"), Method::Subscribe);
        assert_eq!(Method::from_bytes(b"subscribe"), Method::Other);
        assert_eq!(Method::Notify.as_str(), Some("NOTIFY"));
    }
}
