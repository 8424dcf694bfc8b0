//! Command errors and the one place that turns them into Redis's text.

use std::fmt;

/// An error from a command: the client gets the reply and the connection
/// stays open. `Display` gives the exact text after the `-`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CmdError {
    WrongArity(String),
    UnknownCommand {
        name: Vec<u8>,
        args: Vec<Vec<u8>>,
    },
    UnknownSubcommand {
        name: Vec<u8>,
        container: String,
    },
    WrongType,
    Syntax,
    NotInteger,
    NotFloat,
    Overflow,
    NoSuchKey,
    InvalidExpire(&'static str),
    DbIndex,
    /// A complete error line including its code (`ERR ...`, `NOPERM ...`).
    Msg(String),
    /// As `Msg`, for text that echoes arbitrary client bytes.
    Bytes(Vec<u8>),
}

impl CmdError {
    pub fn msg(s: impl Into<String>) -> Self {
        CmdError::Msg(s.into())
    }

    /// The error code Redis counts in `errorstat_<code>`.
    pub fn code(&self) -> String {
        match self {
            CmdError::WrongType => "WRONGTYPE".into(),
            CmdError::Msg(m) => m.split(' ').next().unwrap_or("ERR").to_string(),
            CmdError::Bytes(m) => {
                String::from_utf8_lossy(m.split(|&c| c == b' ').next().unwrap_or(b"ERR"))
                    .into_owned()
            }
            _ => "ERR".into(),
        }
    }
}

/// `b` as C's `%.{max}s` prints it: cut at the first NUL and at `max`.
pub fn c_str_trunc(b: &[u8], max: usize) -> &[u8] {
    let b = &b[..b.len().min(max)];
    match b.iter().position(|&c| c == 0) {
        Some(n) => &b[..n],
        None => b,
    }
}

impl CmdError {
    /// The exact error text (after the `-`); binary-safe, since some
    /// errors echo client arguments as Redis does.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            CmdError::UnknownCommand { name, args } => {
                let mut a: Vec<u8> = Vec::new();
                for arg in args {
                    if a.len() >= 128 {
                        break;
                    }
                    let room = 128 - a.len();
                    a.push(b'\'');
                    a.extend_from_slice(c_str_trunc(arg, room));
                    a.extend_from_slice(b"' ");
                }
                let mut v = b"ERR unknown command '".to_vec();
                v.extend_from_slice(c_str_trunc(name, 128));
                v.extend_from_slice(b"', with args beginning with: ");
                v.extend_from_slice(&a);
                v
            }
            CmdError::UnknownSubcommand { name, container } => {
                let mut v = b"ERR unknown subcommand '".to_vec();
                v.extend_from_slice(c_str_trunc(name, 128));
                v.extend_from_slice(format!("'. Try {container} HELP.").as_bytes());
                v
            }
            CmdError::Bytes(b) => b.clone(),
            _ => self.to_string().into_bytes(),
        }
    }
}

impl fmt::Display for CmdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CmdError::WrongArity(cmd) => {
                write!(f, "ERR wrong number of arguments for '{cmd}' command")
            }
            CmdError::UnknownCommand { .. }
            | CmdError::UnknownSubcommand { .. }
            | CmdError::Bytes(_) => f.write_str(&String::from_utf8_lossy(&self.to_bytes())),
            CmdError::WrongType => {
                f.write_str("WRONGTYPE Operation against a key holding the wrong kind of value")
            }
            CmdError::Syntax => f.write_str("ERR syntax error"),
            CmdError::NotInteger => f.write_str("ERR value is not an integer or out of range"),
            CmdError::NotFloat => f.write_str("ERR value is not a valid float"),
            CmdError::Overflow => f.write_str("ERR increment or decrement would overflow"),
            CmdError::NoSuchKey => f.write_str("ERR no such key"),
            CmdError::InvalidExpire(cmd) => write!(f, "ERR invalid expire time in '{cmd}' command"),
            CmdError::DbIndex => f.write_str("ERR DB index is out of range"),
            CmdError::Msg(m) => f.write_str(m),
        }
    }
}

pub type CmdResult = Result<(), CmdError>;
