//! Integration tests: the real `basalt-server` binary over TCP.

mod support;

mod persistence;
mod protocol;
mod strings;
mod types;
mod types_diff;
