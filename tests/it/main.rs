//! Integration tests: the real `basalt-server` binary over TCP.

mod support;

mod differential;
mod protocol;
mod strings;
