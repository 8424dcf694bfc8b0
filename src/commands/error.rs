//! Command errors and the one place that turns them into Redis's text.

use std::fmt;

/// An error from a command: the client gets the reply and the connection
/// stays open. `Display` gives the exact text after the `-`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CmdError {
    WrongArity(String),
    UnknownCommand { name: Vec<u8>, args: Vec<Vec<u8>> },
    UnknownSubcommand { name: Vec<u8>, container: String },
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
            _ => "ERR".into(),
        }
    }
}

fn quoted_trunc(b: &[u8], max: usize) -> String {
    let s = &b[..b.len().min(max)];
    String::from_utf8_lossy(s).into_owned()
}

impl fmt::Display for CmdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CmdError::WrongArity(cmd) => write!(f, "ERR wrong number of arguments for '{cmd}' command"),
            CmdError::UnknownCommand { name, args } => {
                let mut a = String::new();
                for arg in args {
                    if a.len() >= 128 {
                        break;
                    }
                    let room = 128 - a.len();
                    a.push('\'');
                    a.push_str(&quoted_trunc(arg, room));
                    a.push_str("' ");
                }
                write!(f, "ERR unknown command '{}', with args beginning with: {}", quoted_trunc(name, 128), a)
            }
            CmdError::UnknownSubcommand { name, container } => {
                write!(f, "ERR unknown subcommand '{}'. Try {} HELP.", quoted_trunc(name, 128), container)
            }
            CmdError::WrongType => f.write_str("WRONGTYPE Operation against a key holding the wrong kind of value"),
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
