//! Request decoding: RESP multibulk (`*N\r\n$len\r\n...`) and inline
//! commands (`SET k v\r\n`, as telnet and redis-cli send them).
//!
//! `parse_request` is check-then-parse: it returns `Ok(None)` until a whole
//! command is buffered, and never allocates from a length it has not
//! checked against the configured limits. Arguments are returned as byte
//! ranges into the caller's buffer (zero copy).

use std::ops::Range;

/// Size limits, as Redis's `proto-max-bulk-len` and friends.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_bulk_len: usize,
    pub max_multibulk_len: usize,
    pub max_inline_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: 512 * 1024 * 1024,
            max_multibulk_len: 1024 * 1024,
            max_inline_len: 64 * 1024,
        }
    }
}

/// A malformed request. The connection replies `-ERR Protocol error: <msg>`
/// and closes, as Redis does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Protocol error: {}", self.0)
    }
}

impl std::error::Error for ProtocolError {}

fn perr(s: &str) -> ProtocolError {
    ProtocolError(s.to_string())
}

/// What one call found at the start of the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A command; `args` holds its argument ranges. `consumed` bytes used.
    Command { consumed: usize },
    /// An inline command whose quoted arguments had escapes, so they are
    /// not slices of the input.
    Owned { consumed: usize, args: Vec<Vec<u8>> },
    /// Bytes that hold no command (empty inline line, `*0`, `*-1`).
    Skip { consumed: usize },
}

fn memchr_nl(buf: &[u8]) -> Option<usize> {
    buf.iter().position(|&b| b == b'\n')
}

/// Parses an integer the way Redis's `string2ll` does (strict).
fn parse_len(b: &[u8]) -> Option<i64> {
    if b.is_empty() || b.len() > 20 {
        return None;
    }
    let (neg, d) = match b[0] {
        b'-' => (true, &b[1..]),
        _ => (false, b),
    };
    if d.is_empty() {
        return None;
    }
    let mut v: i64 = 0;
    for &c in d {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as i64)?;
    }
    Some(if neg { -v } else { v })
}

/// Decodes one request from the start of `buf`, pushing argument ranges
/// (relative to `buf`) into `args` (cleared first). `Ok(None)`: incomplete.
pub fn parse_request(
    buf: &[u8],
    limits: &Limits,
    args: &mut Vec<Range<usize>>,
) -> Result<Option<Parsed>, ProtocolError> {
    args.clear();
    match buf.first() {
        None => Ok(None),
        Some(b'*') => parse_multibulk(buf, limits, args),
        Some(_) => parse_inline(buf, limits, args),
    }
}

fn parse_multibulk(
    buf: &[u8],
    limits: &Limits,
    args: &mut Vec<Range<usize>>,
) -> Result<Option<Parsed>, ProtocolError> {
    let nl = match memchr_nl(buf) {
        Some(i) => i,
        None => {
            if buf.len() > limits.max_inline_len {
                return Err(perr("too big mbulk count string"));
            }
            return Ok(None);
        }
    };
    if nl > limits.max_inline_len {
        return Err(perr("too big mbulk count string"));
    }
    // Redis finds '\r' and requires the '\n' after it; a bare '\n' makes
    // the count unparsable.
    let line_end = if nl > 0 && buf[nl - 1] == b'\r' {
        nl - 1
    } else {
        return Err(perr("invalid multibulk length"));
    };
    let count = match parse_len(&buf[1..line_end]) {
        Some(n) if n <= limits.max_multibulk_len as i64 => n,
        _ => return Err(perr("invalid multibulk length")),
    };
    let mut pos = nl + 1;
    if count <= 0 {
        return Ok(Some(Parsed::Skip { consumed: pos }));
    }
    // Do not trust `count` for a reservation: grow as arguments arrive.
    for _ in 0..count {
        if pos >= buf.len() {
            return Ok(None);
        }
        if buf[pos] != b'$' {
            return Err(ProtocolError(format!(
                "expected '$', got '{}'",
                buf[pos] as char
            )));
        }
        let rest = &buf[pos..];
        let nl = match memchr_nl(rest) {
            Some(i) => i,
            None => {
                if rest.len() > limits.max_inline_len {
                    return Err(perr("too big bulk count string"));
                }
                return Ok(None);
            }
        };
        if nl > limits.max_inline_len {
            return Err(perr("too big bulk count string"));
        }
        let line_end = if nl > 0 && rest[nl - 1] == b'\r' {
            nl - 1
        } else {
            return Err(perr("invalid bulk length"));
        };
        let len = match parse_len(&rest[1..line_end]) {
            Some(n) if n >= 0 && n as u64 <= limits.max_bulk_len as u64 => n as usize,
            _ => return Err(perr("invalid bulk length")),
        };
        let start = pos + nl + 1;
        let end = start + len;
        if buf.len() < end + 2 {
            return Ok(None);
        }
        // Redis does not check the two bytes after a bulk; it skips them.
        args.push(start..end);
        pos = end + 2;
    }
    Ok(Some(Parsed::Command { consumed: pos }))
}

fn parse_inline(
    buf: &[u8],
    limits: &Limits,
    args: &mut Vec<Range<usize>>,
) -> Result<Option<Parsed>, ProtocolError> {
    let nl = match memchr_nl(buf) {
        Some(i) => i,
        None => {
            if buf.len() > limits.max_inline_len {
                return Err(perr("too big inline request"));
            }
            return Ok(None);
        }
    };
    if nl > limits.max_inline_len {
        return Err(perr("too big inline request"));
    }
    let line_end = if nl > 0 && buf[nl - 1] == b'\r' {
        nl - 1
    } else {
        nl
    };
    let split = split_args(&buf[..line_end]).ok_or_else(|| perr("unbalanced quotes in request"))?;
    if split.is_empty() {
        return Ok(Some(Parsed::Skip { consumed: nl + 1 }));
    }
    if split.iter().all(|a| a.1.is_some()) {
        args.extend(split.into_iter().filter_map(|(_, r)| r));
        return Ok(Some(Parsed::Command { consumed: nl + 1 }));
    }
    Ok(Some(Parsed::Owned {
        consumed: nl + 1,
        args: split.into_iter().map(|(a, _)| a).collect(),
    }))
}

/// Splits an inline line into owned arguments (escapes resolved).
/// `None` for unbalanced quotes.
pub fn inline_args_owned(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    split_args(line).map(|v| v.into_iter().map(|(a, _)| a).collect())
}

/// Returns each argument's bytes and, when those bytes are a verbatim
/// slice of `line`, its range.
#[allow(clippy::type_complexity)]
fn split_args(line: &[u8]) -> Option<Vec<(Vec<u8>, Option<Range<usize>>)>> {
    let mut out = Vec::new();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && matches!(line[i], b' ' | b'\n' | b'\r' | b'\t' | 0x0b | 0x0c) {
            i += 1;
        }
        if i >= n {
            return Some(out);
        }
        let start = i;
        let mut cur = Vec::new();
        let mut verbatim = true;
        let mut inq = false; // double quotes
        let mut insq = false; // single quotes
        let mut content: Option<Range<usize>> = None;
        loop {
            if inq {
                if i >= n {
                    return None;
                }
                if line[i] == b'\\'
                    && i + 3 < n
                    && line[i + 1] == b'x'
                    && line[i + 2].is_ascii_hexdigit()
                    && line[i + 3].is_ascii_hexdigit()
                {
                    let h = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
                    cur.push(h(line[i + 2]) * 16 + h(line[i + 3]));
                    verbatim = false;
                    i += 3;
                } else if line[i] == b'\\' && i + 1 < n {
                    i += 1;
                    cur.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        c => c,
                    });
                    verbatim = false;
                } else if line[i] == b'"' {
                    // Closing quote must be followed by a space or the end.
                    if i + 1 < n
                        && !matches!(line[i + 1], b' ' | b'\n' | b'\r' | b'\t' | 0x0b | 0x0c)
                    {
                        return None;
                    }
                    content = Some(start + 1..i);
                    i += 1;
                    break;
                } else {
                    cur.push(line[i]);
                }
            } else if insq {
                if i >= n {
                    return None;
                }
                if line[i] == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                    i += 1;
                    cur.push(b'\'');
                    verbatim = false;
                } else if line[i] == b'\'' {
                    if i + 1 < n
                        && !matches!(line[i + 1], b' ' | b'\n' | b'\r' | b'\t' | 0x0b | 0x0c)
                    {
                        return None;
                    }
                    content = Some(start + 1..i);
                    i += 1;
                    break;
                } else {
                    cur.push(line[i]);
                }
            } else {
                if i >= n {
                    break;
                }
                match line[i] {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => break,
                    b'"' if i == start => inq = true,
                    b'\'' if i == start => insq = true,
                    c => cur.push(c),
                }
            }
            i += 1;
        }
        let range = match (verbatim, content) {
            (true, Some(r)) => Some(r),
            (true, None) => Some(start..i),
            (false, _) => None,
        };
        out.push((cur, range));
        // A NUL outside quotes ends the argument in sdssplitargs only as
        // whitespace would; step over it.
        if i < n && line[i] == 0 {
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Arguments and bytes consumed, or no complete request yet.
    type ParseOut = Result<Option<(Vec<Vec<u8>>, usize)>, ProtocolError>;

    fn parse(buf: &[u8]) -> ParseOut {
        let mut r = Vec::new();
        match parse_request(buf, &Limits::default(), &mut r)? {
            None => Ok(None),
            Some(Parsed::Skip { consumed }) => Ok(Some((vec![], consumed))),
            Some(Parsed::Owned { consumed, args }) => Ok(Some((args, consumed))),
            Some(Parsed::Command { consumed }) => Ok(Some((
                r.into_iter().map(|x| buf[x].to_vec()).collect(),
                consumed,
            ))),
        }
    }

    #[test]
    fn multibulk() {
        let b = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nrest";
        let (a, n) = parse(b).unwrap().unwrap();
        assert_eq!(a, vec![b"GET".to_vec(), b"k".to_vec()]);
        assert_eq!(n, b.len() - 4);
        for cut in 0..n {
            assert_eq!(parse(&b[..cut]).unwrap(), None, "cut {cut}");
        }
    }

    #[test]
    fn errors() {
        assert_eq!(parse(b"*x\r\n").unwrap_err().0, "invalid multibulk length");
        assert_eq!(
            parse(b"*2000000\r\n").unwrap_err().0,
            "invalid multibulk length"
        );
        assert_eq!(
            parse(b"*1\r\n$-1\r\n").unwrap_err().0,
            "invalid bulk length"
        );
        assert_eq!(
            parse(b"*1\r\n$600000000\r\n").unwrap_err().0,
            "invalid bulk length"
        );
        assert_eq!(
            parse(b"*1\r\nx\r\n").unwrap_err().0,
            "expected '$', got 'x'"
        );
        assert_eq!(
            parse(b"set \"a b\r\n").unwrap_err().0,
            "unbalanced quotes in request"
        );
        let big = vec![b'a'; 70 * 1024];
        assert_eq!(parse(&big).unwrap_err().0, "too big inline request");
        assert_eq!(parse(b"*0\r\n").unwrap(), Some((vec![], 4)));
        assert_eq!(parse(b"*-1\r\n").unwrap(), Some((vec![], 5)));
    }

    #[test]
    fn inline() {
        let (a, _) = parse(b"set  k   v\r\n").unwrap().unwrap();
        assert_eq!(a, vec![b"set".to_vec(), b"k".to_vec(), b"v".to_vec()]);
        let (a, _) = parse(b"set 'a b' \"c d\"\n").unwrap().unwrap();
        assert_eq!(a, vec![b"set".to_vec(), b"a b".to_vec(), b"c d".to_vec()]);
        assert_eq!(parse(b"\r\n").unwrap(), Some((vec![], 2)));
        let (a, _) = parse(b"set \"a\\nb\" v\r\n").unwrap().unwrap();
        assert_eq!(a[1], b"a\nb".to_vec());
        assert_eq!(
            inline_args_owned(b"set \"a\\nb\\x41\" v").unwrap(),
            vec![b"set".to_vec(), b"a\nbA".to_vec(), b"v".to_vec()]
        );
        assert_eq!(inline_args_owned(b"\"a\"b"), None);
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    fn encode(cmds: &[Vec<Vec<u8>>]) -> Vec<u8> {
        let mut out = Vec::new();
        for c in cmds {
            let a: Vec<&[u8]> = c.iter().map(|x| x.as_slice()).collect();
            crate::db::encode_command(&a, &mut out);
        }
        out
    }

    /// Decodes everything in `buf` fed in the given chunk sizes, the way
    /// the connection does: keep unconsumed bytes, append the next chunk.
    fn decode_chunked(buf: &[u8], cuts: &[usize]) -> Vec<Vec<Vec<u8>>> {
        let mut pending = Vec::new();
        let mut out = Vec::new();
        let mut ranges = Vec::new();
        let mut fed = 0;
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (buf.len() + 1)).collect();
        cuts.push(buf.len());
        cuts.sort_unstable();
        for cut in cuts {
            pending.extend_from_slice(&buf[fed..cut.max(fed)]);
            fed = cut.max(fed);
            loop {
                match parse_request(&pending, &Limits::default(), &mut ranges).expect("valid input")
                {
                    None => break,
                    Some(Parsed::Command { consumed }) => {
                        out.push(ranges.iter().map(|r| pending[r.clone()].to_vec()).collect());
                        pending.drain(..consumed);
                    }
                    Some(Parsed::Owned { consumed, args }) => {
                        out.push(args);
                        pending.drain(..consumed);
                    }
                    Some(Parsed::Skip { consumed }) => {
                        pending.drain(..consumed);
                    }
                }
            }
        }
        assert!(pending.is_empty());
        out
    }

    proptest! {
        #[test]
        fn roundtrip_any_split(
            cmds in prop::collection::vec(prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..6), 1..8),
            cuts in prop::collection::vec(any::<usize>(), 0..6),
        ) {
            let buf = encode(&cmds);
            prop_assert_eq!(decode_chunked(&buf, &cuts), cmds);
        }

        #[test]
        fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let mut ranges = Vec::new();
            let mut rest: &[u8] = &bytes;
            // Either an error, an incomplete frame, or progress every step.
            while let Ok(Some(p)) = parse_request(rest, &Limits::default(), &mut ranges) {
                let n = match p { Parsed::Command { consumed } | Parsed::Skip { consumed } | Parsed::Owned { consumed, .. } => consumed };
                prop_assert!(n > 0 && n <= rest.len());
                for r in &ranges { prop_assert!(r.end <= rest.len()); }
                rest = &rest[n..];
            }
        }
    }
}
