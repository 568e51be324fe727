//! See DESIGN.md.

pub mod framing;
