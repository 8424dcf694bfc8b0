//! Integration tests: the real `basalt-server` binary over TCP.

mod support;

mod blocking;
mod differential;
mod hash_ttl;
mod persistence;
mod protocol;
mod strings;
mod tools;
mod types;
mod types_diff;
