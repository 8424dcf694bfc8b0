//! The key filters shared by every subcommand: `--db`, `--match` (Redis
//! glob), `--regex`, `--type`, `--min-size`, `--expired` / `--not-expired`.

use basalt_rdb::Entry;
use clap::Args;

/// Which keys a subcommand looks at.
#[derive(Debug, Clone, Default, Args)]
pub struct FilterArgs {
    /// Only these databases (repeatable: --db 0 --db 3).
    #[arg(long = "db", value_name = "N")]
    pub db: Vec<u64>,
    /// Only keys matching this Redis glob (`*`, `?`, `[a-z]`, `[^x]`, `\` escapes), as KEYS/SCAN MATCH.
    #[arg(long = "match", value_name = "GLOB")]
    pub glob: Option<String>,
    /// Only keys matching this regular expression (matched against the key bytes).
    #[arg(long, value_name = "RE")]
    pub regex: Option<String>,
    /// Only keys of these types: string, list, set, zset, hash, stream, module, array (repeatable or comma-separated).
    #[arg(long = "type", value_name = "TYPE", value_delimiter = ',')]
    pub types: Vec<String>,
    /// Only keys whose estimated memory (as `memory` reports it) is at least this many bytes.
    #[arg(long, value_name = "BYTES")]
    pub min_size: Option<u64>,
    /// Only keys whose expiry has already passed.
    #[arg(long, conflicts_with = "not_expired")]
    pub expired: bool,
    /// Only keys that have not expired (no expiry, or expiry in the future).
    #[arg(long)]
    pub not_expired: bool,
    /// The time "expired" refers to, Unix milliseconds (default: now).
    #[arg(long, value_name = "MS")]
    pub now: Option<i64>,
}

/// Compiled filters.
pub struct Filter {
    dbs: Vec<u64>,
    glob: Option<Vec<u8>>,
    regex: Option<regex::bytes::Regex>,
    types: Vec<String>,
    min_size: Option<u64>,
    expired: Option<bool>,
    /// The reference time for expiry, Unix ms.
    pub now: i64,
}

const TYPES: &[&str] = &[
    "string",
    "list",
    "set",
    "zset",
    "hash",
    "stream",
    "module",
    "array",
    "path-hash",
];

/// Current Unix time in milliseconds.
pub fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Filter {
    /// Compile the arguments; bad regexes or type names are errors.
    pub fn new(a: &FilterArgs) -> Result<Filter, String> {
        let regex = match &a.regex {
            Some(r) => Some(regex::bytes::Regex::new(r).map_err(|e| format!("--regex: {e}"))?),
            None => None,
        };
        for t in &a.types {
            if !TYPES.contains(&t.as_str()) {
                return Err(format!("--type {t}: expected one of {}", TYPES.join(", ")));
            }
        }
        Ok(Filter {
            dbs: a.db.clone(),
            glob: a.glob.as_ref().map(|g| g.as_bytes().to_vec()),
            regex,
            types: a.types.clone(),
            min_size: a.min_size,
            expired: if a.expired {
                Some(true)
            } else if a.not_expired {
                Some(false)
            } else {
                None
            },
            now: a.now.unwrap_or_else(unix_ms),
        })
    }

    /// A filter that lets everything through.
    pub fn all() -> Filter {
        Filter::new(&FilterArgs::default()).unwrap_or_else(|_| unreachable!())
    }

    /// Whether the filter needs the memory estimate.
    pub fn needs_size(&self) -> bool {
        self.min_size.is_some()
    }

    /// Checks everything but the size (cheap checks first).
    pub fn matches(&self, e: &Entry) -> bool {
        if !self.dbs.is_empty() && !self.dbs.contains(&e.db) {
            return false;
        }
        if !self.types.is_empty() && !self.types.iter().any(|t| t == e.value.type_name()) {
            return false;
        }
        if let Some(want) = self.expired {
            let is = e.expire_ms.is_some_and(|x| x <= self.now);
            if is != want {
                return false;
            }
        }
        if let Some(g) = &self.glob {
            if !glob_match(g, &e.key, false) {
                return false;
            }
        }
        if let Some(r) = &self.regex {
            if !r.is_match(&e.key) {
                return false;
            }
        }
        true
    }

    /// Checks the size filter against an estimate.
    pub fn size_ok(&self, bytes: u64) -> bool {
        self.min_size.is_none_or(|m| bytes >= m)
    }

    /// Everything, computing the memory estimate only when needed.
    pub fn accepts(&self, e: &Entry) -> bool {
        self.matches(e) && (!self.needs_size() || self.size_ok(super::memory::estimate(e).bytes))
    }
}

/// Redis's `stringmatchlen`: `*`, `?`, `[...]` with ranges and `^`, `\`
/// escapes. Binary safe.
pub fn glob_match(pattern: &[u8], s: &[u8], nocase: bool) -> bool {
    let eq = |a: u8, b: u8| {
        if nocase {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let (mut p, mut i) = (0usize, 0usize);
    // Backtracking point for the last `*`.
    let mut star: Option<(usize, usize)> = None;
    loop {
        if p < pattern.len() {
            let c = pattern[p];
            match c {
                b'*' => {
                    while p + 1 < pattern.len() && pattern[p + 1] == b'*' {
                        p += 1;
                    }
                    star = Some((p, i));
                    p += 1;
                    continue;
                }
                b'?' if i < s.len() => {
                    p += 1;
                    i += 1;
                    continue;
                }
                b'[' if i < s.len() => {
                    let (matched, next) = class_match(pattern, p, s[i], nocase);
                    if matched {
                        p = next;
                        i += 1;
                        continue;
                    }
                }
                b'\\' if p + 1 < pattern.len() && i < s.len() && eq(pattern[p + 1], s[i]) => {
                    p += 2;
                    i += 1;
                    continue;
                }
                _ if c != b'?' && c != b'[' && c != b'\\' && i < s.len() && eq(c, s[i]) => {
                    p += 1;
                    i += 1;
                    continue;
                }
                b'\\' if p + 1 >= pattern.len() && i < s.len() && eq(b'\\', s[i]) => {
                    p += 1;
                    i += 1;
                    continue;
                }
                _ => {}
            }
        } else if i == s.len() {
            return true;
        }
        // Mismatch: let the last `*` swallow one more byte.
        match star {
            Some((sp, si)) if si < s.len() => {
                star = Some((sp, si + 1));
                p = sp + 1;
                i = si + 1;
            }
            _ => return false,
        }
    }
}

/// Matches `[...]` at `pattern[p]` against `c`; returns the match and the
/// index after the class.
fn class_match(pattern: &[u8], p: usize, c: u8, nocase: bool) -> (bool, usize) {
    let low = |b: u8| if nocase { b.to_ascii_lowercase() } else { b };
    let c = low(c);
    let mut j = p + 1;
    let not = pattern.get(j) == Some(&b'^');
    if not {
        j += 1;
    }
    let mut matched = false;
    loop {
        match pattern.get(j) {
            None => {
                // Unterminated class: Redis treats the end as the close.
                break;
            }
            Some(b'\\') if j + 1 < pattern.len() => {
                if low(pattern[j + 1]) == c {
                    matched = true;
                }
                j += 2;
            }
            Some(b']') => {
                j += 1;
                break;
            }
            Some(&a) if pattern.get(j + 1) == Some(&b'-') && j + 2 < pattern.len() => {
                let (mut lo, mut hi) = (low(a), low(pattern[j + 2]));
                if lo > hi {
                    std::mem::swap(&mut lo, &mut hi);
                }
                if c >= lo && c <= hi {
                    matched = true;
                }
                j += 3;
            }
            Some(&a) => {
                if low(a) == c {
                    matched = true;
                }
                j += 1;
            }
        }
    }
    (matched != not, j)
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs_like_redis() {
        let m = |p: &str, s: &str| glob_match(p.as_bytes(), s.as_bytes(), false);
        assert!(m("*", ""));
        assert!(m("user:*", "user:1"));
        assert!(!m("user:*", "usr:1"));
        assert!(m("h?llo", "hello"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(m("*:*:name", "user:12:name"));
        assert!(!m("*:*:name", "user:12:age"));
        assert!(m("a\\*b", "a*b"));
        assert!(!m("a\\*b", "axb"));
        assert!(m("*a*b*c", "xxaxxbxxc"));
        assert!(!m("a?", "a"));
    }
}
