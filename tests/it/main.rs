//! Integration tests: the real `basalt-server` binary over TCP.

mod support;

mod protocol;
mod strings;
