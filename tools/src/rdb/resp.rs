//! RESP: commands that rebuild a key (plain commands or RESTORE), and a
//! small pipelining client for `import` and `export`.

use basalt_rdb::{encode_dump, EncodeOptions, Entry, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Elements per command when a collection is rebuilt with plain commands.
const CHUNK: usize = 512;

/// Appends one command as a RESP array.
pub fn command(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.push(b'*');
    out.extend_from_slice(itoa::Buffer::new().format(args.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in args {
        out.push(b'$');
        out.extend_from_slice(itoa::Buffer::new().format(a.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// A score as Redis parses it back exactly.
pub fn score_text(s: f64) -> Vec<u8> {
    if s == f64::INFINITY {
        b"inf".to_vec()
    } else if s == f64::NEG_INFINITY {
        b"-inf".to_vec()
    } else {
        ryu::Buffer::new().format(s).as_bytes().to_vec()
    }
}

fn int(v: impl itoa::Integer) -> Vec<u8> {
    itoa::Buffer::new().format(v).as_bytes().to_vec()
}

/// Plain commands rebuilding `e` (without SELECT). `replace` deletes the
/// key first. Returns the number of commands, or why the value cannot be
/// rebuilt this way. Warnings (what is lost) go to `warn`.
pub fn plain(
    e: &Entry,
    replace: bool,
    out: &mut Vec<u8>,
    warn: &mut Vec<String>,
) -> Result<usize, String> {
    let k: &[u8] = &e.key;
    let mut n = 0;
    let mut cmd = |out: &mut Vec<u8>, args: &[&[u8]]| {
        command(out, args);
        n += 1;
    };
    if replace && !matches!(e.value, Value::String(_)) {
        cmd(out, &[b"DEL", k]);
    }
    match &e.value {
        Value::String(v) => cmd(out, &[b"SET", k, v]),
        Value::List(items) | Value::Set(items) => {
            let verb: &[u8] = if matches!(e.value, Value::List(_)) {
                b"RPUSH"
            } else {
                b"SADD"
            };
            for chunk in items.chunks(CHUNK) {
                let mut args: Vec<&[u8]> = vec![verb, k];
                args.extend(chunk.iter().map(|i| i.as_slice()));
                cmd(out, &args);
            }
        }
        Value::SortedSet(pairs) => {
            for chunk in pairs.chunks(CHUNK) {
                let scores: Vec<Vec<u8>> = chunk.iter().map(|p| score_text(p.1)).collect();
                let mut args: Vec<&[u8]> = vec![b"ZADD", k];
                for (p, s) in chunk.iter().zip(&scores) {
                    args.push(s);
                    args.push(&p.0);
                }
                cmd(out, &args);
            }
        }
        Value::Hash(fields) => {
            for chunk in fields.chunks(CHUNK) {
                let mut args: Vec<&[u8]> = vec![b"HSET", k];
                for f in chunk {
                    args.push(&f.field);
                    args.push(&f.value);
                }
                cmd(out, &args);
            }
            for f in fields {
                if let Some(x) = f.expire_ms {
                    let x = int(x);
                    cmd(out, &[b"HPEXPIREAT", k, &x, b"FIELDS", b"1", &f.field]);
                }
            }
        }
        Value::Stream(s) => {
            for en in &s.entries {
                let id = en.id.to_string().into_bytes();
                let mut args: Vec<&[u8]> = vec![b"XADD", k, &id];
                for (f, v) in &en.fields {
                    args.push(f);
                    args.push(v);
                }
                cmd(out, &args);
            }
            if s.entries.is_empty() {
                // Creates the key, then trims the entry away.
                let id = s.last_id.to_string().into_bytes();
                cmd(out, &[b"XADD", k, b"MAXLEN", b"0", &id, b"_", b"_"]);
            }
            let last = s.last_id.to_string().into_bytes();
            let mut args: Vec<Vec<u8>> = vec![b"XSETID".to_vec(), k.to_vec(), last];
            if let Some(a) = s.entries_added {
                args.push(b"ENTRIESADDED".to_vec());
                args.push(int(a));
                args.push(b"MAXDELETEDID".to_vec());
                args.push(
                    s.max_deleted_id
                        .unwrap_or_default()
                        .to_string()
                        .into_bytes(),
                );
            }
            let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
            cmd(out, &refs);
            for g in &s.groups {
                let id = g.last_delivered_id.to_string().into_bytes();
                let mut args: Vec<Vec<u8>> = vec![
                    b"XGROUP".to_vec(),
                    b"CREATE".to_vec(),
                    k.to_vec(),
                    g.name.clone(),
                    id,
                ];
                if let Some(r) = g.entries_read {
                    args.push(b"ENTRIESREAD".to_vec());
                    args.push(int(r));
                }
                let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
                cmd(out, &refs);
                for c in &g.consumers {
                    cmd(out, &[b"XGROUP", b"CREATECONSUMER", k, &g.name, &c.name]);
                }
                if !g.pel.is_empty() {
                    warn.push(format!(
                        "key {:?} group {:?}: {} pending entries cannot be rebuilt with plain commands (use RESTORE)",
                        String::from_utf8_lossy(k),
                        String::from_utf8_lossy(&g.name),
                        g.pel.len()
                    ));
                }
            }
        }
        Value::Module(m) => {
            return Err(format!(
                "key {:?}: module data of type '{}' has no plain commands (use RESTORE)",
                String::from_utf8_lossy(k),
                m.name
            ))
        }
        Value::Array(_) => {
            return Err(format!(
                "key {:?}: a Redis 8.8 array has no plain commands here, and no RDB version this tool writes holds one",
                String::from_utf8_lossy(k)
            ))
        }
        Value::PathHash(_) => {
            return Err(format!(
                "key {:?}: a Valkey 9.2 path hash has no Redis commands, and no RDB version this tool writes holds one",
                String::from_utf8_lossy(k)
            ))
        }
        _ => {
            return Err(format!(
                "key {:?}: unknown value type",
                String::from_utf8_lossy(k)
            ))
        }
    }
    if let Some(x) = e.expire_ms {
        let x = int(x);
        cmd(out, &[b"PEXPIREAT", k, &x]);
    }
    Ok(n)
}

/// `RESTORE key ttl payload [REPLACE] ABSTTL [IDLETIME s] [FREQ f]` with a
/// payload for `opts.target`.
pub fn restore(
    e: &Entry,
    opts: &EncodeOptions,
    replace: bool,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let payload = encode_dump(&e.value, opts)
        .map_err(|err| format!("key {:?}: {err}", String::from_utf8_lossy(&e.key)))?;
    let ttl = int(e.expire_ms.unwrap_or(0).max(0));
    let mut args: Vec<&[u8]> = vec![b"RESTORE", &e.key, &ttl, &payload];
    if replace {
        args.push(b"REPLACE");
    }
    if e.expire_ms.is_some() {
        args.push(b"ABSTTL");
    }
    let idle = e.lru_idle.map(int);
    let freq = e.lfu_freq.map(int);
    if let Some(i) = &idle {
        args.push(b"IDLETIME");
        args.push(i);
    } else if let Some(f) = &freq {
        args.push(b"FREQ");
        args.push(f);
    }
    command(out, &args);
    Ok(())
}

/// A reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+...`
    Simple(String),
    /// `-...`
    Error(String),
    /// `:n`
    Int(i64),
    /// `$n` (None for a null bulk).
    Bulk(Option<Vec<u8>>),
    /// `*n` (None for a null array).
    Array(Option<Vec<Reply>>),
}

/// `--tls` and its files, shared by `import` and `export` (the options
/// redis-cli uses).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsArgs {
    /// Connect with TLS.
    #[arg(long)]
    pub tls: bool,
    /// CA certificate(s) to trust (PEM); default: the system's bundle.
    #[arg(long, value_name = "FILE", requires = "tls")]
    pub cacert: Option<std::path::PathBuf>,
    /// Client certificate (PEM), for servers with tls-auth-clients.
    #[arg(long, value_name = "FILE", requires_all = ["tls", "key"])]
    pub cert: Option<std::path::PathBuf>,
    /// Client private key (PEM).
    #[arg(long, value_name = "FILE", requires_all = ["tls", "cert"])]
    pub key: Option<std::path::PathBuf>,
    /// Server name to check the certificate against (default: the host).
    #[arg(long, value_name = "HOST", requires = "tls")]
    pub sni: Option<String>,
}

/// The system's CA bundles, first found wins.
const SYSTEM_CA: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

fn pem_certs(
    path: &std::path::Path,
) -> super::Result<Vec<rustls::pki_types::CertificateDer<'static>>> {
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: bad PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate found", path.display()).into());
    }
    Ok(certs)
}

impl TlsArgs {
    fn client_config(&self) -> super::Result<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        let ca: Option<std::path::PathBuf> = match &self.cacert {
            Some(p) => Some(p.clone()),
            None => SYSTEM_CA
                .iter()
                .map(std::path::PathBuf::from)
                .find(|p| p.exists()),
        };
        let Some(ca) = ca else {
            return Err("--tls: no CA certificates (give --cacert FILE)".into());
        };
        for c in pem_certs(&ca)? {
            // A system bundle may hold certificates webpki rejects.
            if let Err(e) = roots.add(c) {
                if self.cacert.is_some() {
                    return Err(format!("{}: {e}", ca.display()).into());
                }
            }
        }
        let b = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots);
        Ok(match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                let certs = pem_certs(cert)?;
                let pem = std::fs::read(key).map_err(|e| format!("{}: {e}", key.display()))?;
                let k = rustls_pemfile::private_key(&mut pem.as_slice())
                    .map_err(|e| format!("{}: bad PEM: {e}", key.display()))?
                    .ok_or_else(|| format!("{}: no private key found", key.display()))?;
                b.with_client_auth_cert(certs, k)
                    .map_err(|e| format!("{} / {}: {e}", cert.display(), key.display()))?
            }
            _ => b.with_no_client_auth(),
        })
    }
}

/// A plain or TLS connection.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// A blocking RESP2 connection.
pub struct Client {
    r: BufReader<Stream>,
}

fn proto(msg: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.into())
}

impl Client {
    /// Connects to `host:port`.
    pub fn connect(addr: &str) -> std::io::Result<Client> {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(300)))?;
        Ok(Client {
            r: BufReader::with_capacity(1 << 16, Stream::Plain(s)),
        })
    }

    /// Connects with TLS; the handshake happens here, so a refused
    /// certificate is reported as such.
    pub fn connect_tls(addr: &str, tls: &TlsArgs) -> super::Result<Client> {
        let config = tls.client_config()?;
        let host = match &tls.sni {
            Some(h) => h.clone(),
            None => {
                let h = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
                h.trim_start_matches('[').trim_end_matches(']').to_string()
            }
        };
        let name = rustls::pki_types::ServerName::try_from(host.clone())
            .map_err(|e| format!("{addr}: bad server name '{host}': {e}"))?;
        let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name)
            .map_err(|e| format!("{addr}: TLS: {e}"))?;
        let s = TcpStream::connect(addr).map_err(|e| format!("{addr}: {e}"))?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(300)))?;
        let mut tls_stream = rustls::StreamOwned::new(conn, s);
        while tls_stream.conn.is_handshaking() {
            tls_stream
                .conn
                .complete_io(&mut tls_stream.sock)
                .map_err(|e| format!("{addr}: TLS handshake failed: {e}"))?;
        }
        Ok(Client {
            r: BufReader::with_capacity(1 << 16, Stream::Tls(Box::new(tls_stream))),
        })
    }

    /// Connects (with TLS if asked) and authenticates (AUTH [user]
    /// password) if asked.
    pub fn open(
        addr: &str,
        user: Option<&str>,
        password: Option<&str>,
        tls: &TlsArgs,
    ) -> super::Result<Client> {
        let mut c = if tls.tls {
            let mut c = Client::connect_tls(addr, tls)?;
            // With TLS 1.3 the server checks the client's certificate
            // after the client's side of the handshake is done: one round
            // trip shows whether it was accepted.
            c.call(&[b"PING"]).map_err(|e| {
                let hint = if tls.cert.is_none() {
                    " (does the server require a client certificate? give --cert and --key)"
                } else {
                    ""
                };
                format!("{addr}: TLS: {e}{hint}")
            })?;
            c
        } else {
            Client::connect(addr).map_err(|e| format!("{addr}: {e}"))?
        };
        if let Some(p) = password {
            let mut args: Vec<&[u8]> = vec![b"AUTH"];
            if let Some(u) = user {
                args.push(u.as_bytes());
            }
            args.push(p.as_bytes());
            if let Reply::Error(e) = c.call(&args)? {
                return Err(format!("{addr}: AUTH: {e}").into());
            }
        }
        Ok(c)
    }

    /// Waits while the server answers `-LOADING` (it is loading its data).
    pub fn wait_loaded(&mut self) -> super::Result<()> {
        let deadline = std::time::Instant::now() + Duration::from_secs(3600);
        loop {
            match self.call(&[b"SCAN", b"0", b"COUNT", b"1"])? {
                Reply::Error(e)
                    if e.starts_with("LOADING") && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(100));
                }
                _ => return Ok(()),
            }
        }
    }

    /// Sends raw, already encoded commands.
    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let s = self.r.get_mut();
        s.write_all(bytes)?;
        s.flush()
    }

    /// One command, one reply.
    pub fn call(&mut self, args: &[&[u8]]) -> std::io::Result<Reply> {
        let mut b = Vec::new();
        command(&mut b, args);
        self.send(&b)?;
        self.read()
    }

    fn line(&mut self) -> std::io::Result<Vec<u8>> {
        let mut l = Vec::new();
        self.r.read_until(b'\n', &mut l)?;
        if !l.ends_with(b"\r\n") {
            return Err(proto("connection closed or bad line"));
        }
        l.truncate(l.len() - 2);
        Ok(l)
    }

    fn num(l: &[u8]) -> std::io::Result<i64> {
        std::str::from_utf8(l)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| proto(format!("bad number {:?}", String::from_utf8_lossy(l))))
    }

    /// Reads one reply.
    pub fn read(&mut self) -> std::io::Result<Reply> {
        let l = self.line()?;
        let (t, rest) = l.split_first().ok_or_else(|| proto("empty line"))?;
        Ok(match t {
            b'+' => Reply::Simple(String::from_utf8_lossy(rest).into_owned()),
            b'-' => Reply::Error(String::from_utf8_lossy(rest).into_owned()),
            b':' => Reply::Int(Self::num(rest)?),
            b'$' => {
                let n = Self::num(rest)?;
                if n < 0 {
                    Reply::Bulk(None)
                } else {
                    let mut b = vec![0; n as usize + 2];
                    self.r.read_exact(&mut b)?;
                    b.truncate(n as usize);
                    Reply::Bulk(Some(b))
                }
            }
            b'*' => {
                let n = Self::num(rest)?;
                if n < 0 {
                    Reply::Array(None)
                } else {
                    let mut v = Vec::with_capacity(n.min(1024) as usize);
                    for _ in 0..n {
                        v.push(self.read()?);
                    }
                    Reply::Array(Some(v))
                }
            }
            _ => return Err(proto(format!("unexpected reply type {:?}", *t as char))),
        })
    }

    /// The raw reader (for SYNC payloads).
    pub fn reader(&mut self) -> &mut BufReader<Stream> {
        &mut self.r
    }
}
