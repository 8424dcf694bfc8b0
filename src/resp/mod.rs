//! RESP, without I/O: the request decoder and the reply encoder.
//!
//! Only `connection.rs` touches sockets; these functions work on byte
//! slices so they can be unit- and property-tested and fuzzed.

pub mod decode;
pub mod reply;

pub use decode::{parse_request, Limits, ProtocolError};
pub use reply::Reply;
