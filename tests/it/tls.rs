//! TLS: certificates made by the test (rcgen), `redis-cli --tls` against
//! the real server, client-certificate checks, bad files at start, and
//! CONFIG SET of the TLS options.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::support::{free_port, RedisServer, TestServer};

/// A CA, a server certificate for 127.0.0.1/localhost and a client
/// certificate, written as PEM files in a temp dir.
pub struct Certs {
    pub dir: tempfile::TempDir,
}

impl Certs {
    pub fn new() -> Certs {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
            KeyUsagePurpose, SanType,
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "Basalt test CA");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key).unwrap();

        let leaf = |name: &str, server: bool| {
            let key = KeyPair::generate().unwrap();
            let mut p = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
            p.subject_alt_names
                .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
            p.distinguished_name.push(DnType::CommonName, name);
            p.extended_key_usages = vec![if server {
                ExtendedKeyUsagePurpose::ServerAuth
            } else {
                ExtendedKeyUsagePurpose::ClientAuth
            }];
            let cert = p.signed_by(&key, &ca_cert, &ca_key).unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let (scert, skey) = leaf("basalt server", true);
        let (ccert, ckey) = leaf("basalt client", false);
        let w = |n: &str, s: &str| std::fs::write(dir.path().join(n), s).unwrap();
        w("ca.crt", &ca_cert.pem());
        w("server.crt", &scert);
        w("server.key", &skey);
        w("client.crt", &ccert);
        w("client.key", &ckey);
        Certs { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn p(&self, name: &str) -> String {
        self.path(name).to_string_lossy().into_owned()
    }

    /// Server arguments for TLS on `port`, plus a plain port the test
    /// harness uses to see the server is up (`port 0` with a TLS port
    /// means TLS only, as in Redis).
    pub fn server_args(&self, port: u16, extra: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = vec![
            "--port".into(),
            free_port().to_string(),
            "--tls-port".into(),
            port.to_string(),
            "--tls-cert-file".into(),
            self.p("server.crt"),
            "--tls-key-file".into(),
            self.p("server.key"),
            "--tls-ca-cert-file".into(),
            self.p("ca.crt"),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    }
}

fn start_tls(certs: &Certs, extra: &[&str]) -> (TestServer, u16) {
    let port = free_port();
    let args = certs.server_args(port, extra);
    let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    (TestServer::start(&a), port)
}

fn have_cli() -> bool {
    RedisServer::available()
        && Command::new("redis-cli")
            .arg("--help")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).contains("--tls"))
            .unwrap_or(false)
}

/// redis-cli over TLS; returns (stdout, stderr, success).
fn cli_tls(port: u16, tls_args: &[String], cmd: &[&str]) -> (String, String, bool) {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "--tls"])
        .args(tls_args)
        .args(cmd)
        .stdin(Stdio::null())
        .output()
        .expect("redis-cli");
    (
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
        out.status.success(),
    )
}

fn with_cert(c: &Certs) -> Vec<String> {
    vec![
        "--cacert".into(),
        c.p("ca.crt"),
        "--cert".into(),
        c.p("client.crt"),
        "--key".into(),
        c.p("client.key"),
    ]
}

fn no_cert(c: &Certs) -> Vec<String> {
    vec!["--cacert".into(), c.p("ca.crt")]
}

#[test]
fn redis_cli_over_tls_with_client_cert() {
    if !have_cli() {
        eprintln!("redis-cli with TLS not installed; skipped");
        return;
    }
    let certs = Certs::new();
    let (s, port) = start_tls(&certs, &[]);
    let a = with_cert(&certs);
    assert_eq!(cli_tls(port, &a, &["set", "k", "over tls"]).0, "OK");
    assert_eq!(cli_tls(port, &a, &["get", "k"]).0, "over tls");
    // The plain port serves the same data side by side.
    let mut raw = s.raw();
    assert_eq!(raw.cmd_str(&["GET", "k"]), b"$8\r\nover tls\r\n");
    // A big reply crosses many TLS records.
    let big = "x".repeat(120_000);
    assert_eq!(cli_tls(port, &a, &["set", "big", &big]).0, "OK");
    assert_eq!(cli_tls(port, &a, &["strlen", "big"]).0, "120000");
    assert_eq!(cli_tls(port, &a, &["get", "big"]).0.len(), 120_000);
    // RESP3 and pipelined input over TLS.
    assert!(cli_tls(port, &a, &["-3", "hello", "3"]).0.contains("proto"));
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "--tls"])
        .args(&a)
        .arg("--pipe")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            let mut input = Vec::new();
            for i in 0..1000 {
                input.extend_from_slice(format!("SET p{i} {i}\r\n").as_bytes());
            }
            c.stdin.take().unwrap().write_all(&input)?;
            c.wait_with_output()
        })
        .expect("redis-cli --pipe");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("errors: 0, replies: 1000"), "{text}");
    assert_eq!(raw.cmd_str(&["GET", "p999"]), b"$3\r\n999\r\n");
    // CONFIG GET shows the options as given.
    let v = cli_tls(port, &a, &["config", "get", "tls-port"]).0;
    assert_eq!(v, format!("tls-port\n{port}"));
    assert_eq!(
        cli_tls(port, &a, &["config", "get", "tls-auth-clients"]).0,
        "tls-auth-clients\nyes"
    );
}

#[test]
fn client_cert_required_unless_optional_or_no() {
    if !have_cli() {
        return;
    }
    let certs = Certs::new();
    // Default `tls-auth-clients yes`: no certificate, no connection.
    let (_s, port) = start_tls(&certs, &[]);
    let (out, err, _) = cli_tls(port, &no_cert(&certs), &["ping"]);
    assert_ne!(out, "PONG", "a client without a certificate was served");
    assert!(!err.is_empty() || out.is_empty(), "{out} {err}");
    assert_eq!(cli_tls(port, &with_cert(&certs), &["ping"]).0, "PONG");

    // A certificate from another CA is refused too.
    let other = Certs::new();
    let mixed = vec![
        "--cacert".into(),
        certs.p("ca.crt"),
        "--cert".into(),
        other.p("client.crt"),
        "--key".into(),
        other.p("client.key"),
    ];
    assert_ne!(cli_tls(port, &mixed, &["ping"]).0, "PONG");

    let (_s2, port2) = start_tls(&certs, &["--tls-auth-clients", "optional"]);
    assert_eq!(cli_tls(port2, &no_cert(&certs), &["ping"]).0, "PONG");
    assert_eq!(cli_tls(port2, &with_cert(&certs), &["ping"]).0, "PONG");
    assert_ne!(cli_tls(port2, &mixed, &["ping"]).0, "PONG");

    let (_s3, port3) = start_tls(&certs, &["--tls-auth-clients", "no"]);
    assert_eq!(cli_tls(port3, &no_cert(&certs), &["ping"]).0, "PONG");
    // Without the CA the client does not trust the server.
    assert_ne!(cli_tls(port3, &[], &["ping"]).0, "PONG");
    assert_eq!(cli_tls(port3, &["--insecure".into()], &["ping"]).0, "PONG");
}

#[test]
fn protocols_and_ciphersuites() {
    if !have_cli() {
        return;
    }
    let certs = Certs::new();
    let a = with_cert(&certs);
    let (_s, port) = start_tls(
        &certs,
        &[
            "--tls-protocols",
            "TLSv1.3",
            "--tls-ciphersuites",
            "TLS_CHACHA20_POLY1305_SHA256",
        ],
    );
    assert_eq!(cli_tls(port, &a, &["ping"]).0, "PONG");
    // A client offering only a suite the server left out cannot connect.
    let mut only_aes = a.clone();
    only_aes.extend(["--tls-ciphersuites".into(), "TLS_AES_256_GCM_SHA384".into()]);
    assert_ne!(cli_tls(port, &only_aes, &["ping"]).0, "PONG");

    let (_s2, port2) = start_tls(
        &certs,
        &[
            "--tls-protocols",
            "TLSv1.2",
            "--tls-ciphers",
            "ECDHE-ECDSA-AES128-GCM-SHA256",
        ],
    );
    assert_eq!(cli_tls(port2, &a, &["ping"]).0, "PONG");
    let mut tls13 = a.clone();
    tls13.extend([
        "--tls-ciphers".into(),
        "ECDHE-ECDSA-AES256-GCM-SHA384".into(),
    ]);
    assert_ne!(cli_tls(port2, &tls13, &["ping"]).0, "PONG");
}

/// Runs the server binary expecting it to refuse to start; returns stderr.
fn start_fails(args: &[String]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_basalt-server"))
        .args(["--port", "0", "--dir"])
        .arg(dir.path())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("spawn");
    assert!(!out.status.success(), "server started with {args:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_tls_files_stop_the_start_with_a_clear_error() {
    let certs = Certs::new();
    let port = free_port();
    let with = |name: &str, value: &str| {
        let mut args = certs.server_args(port, &[]);
        let i = args.iter().position(|a| a == name).unwrap();
        args[i + 1] = value.to_string();
        args
    };
    let missing = certs.p("nope.pem");
    let e = start_fails(&with("--tls-cert-file", &missing));
    assert!(
        e.contains("TLS configuration error")
            && e.contains("tls-cert-file")
            && e.contains("nope.pem"),
        "{e}"
    );
    let garbage = certs.path("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let e = start_fails(&with("--tls-cert-file", &garbage.to_string_lossy()));
    assert!(
        e.contains("tls-cert-file") && e.contains("no certificate"),
        "{e}"
    );
    let e = start_fails(&with("--tls-key-file", &garbage.to_string_lossy()));
    assert!(
        e.contains("tls-key-file") && e.contains("no private key"),
        "{e}"
    );
    // A key that does not belong to the certificate.
    let e = start_fails(&with("--tls-key-file", &certs.p("client.key")));
    assert!(
        e.contains("tls-cert-file") && e.contains("tls-key-file"),
        "{e}"
    );
    let e = start_fails(&with("--tls-ca-cert-file", &missing));
    assert!(e.contains("tls-ca-cert-file"), "{e}");
    let mut args = certs.server_args(port, &[]);
    args.extend(["--tls-protocols".into(), "TLSv1.1".into()]);
    let e = start_fails(&args);
    assert!(e.contains("tls-protocols"), "{e}");
    let mut args = certs.server_args(port, &[]);
    args.extend(["--tls-ciphersuites".into(), "TLS_NO_SUCH_SUITE".into()]);
    let e = start_fails(&args);
    assert!(e.contains("tls-ciphersuites"), "{e}");
    // No cert at all with a TLS port.
    let e = start_fails(&["--tls-port".into(), port.to_string()]);
    assert!(e.contains("tls-cert-file"), "{e}");
}

#[test]
fn config_set_reloads_tls_and_refuses_bad_files() {
    if !have_cli() {
        return;
    }
    let certs = Certs::new();
    let (s, port) = start_tls(&certs, &[]);
    let mut raw = s.raw();
    // A bad file is refused and the old context keeps working.
    let r = raw.cmd_str(&["CONFIG", "SET", "tls-cert-file", "/nonexistent/x.pem"]);
    assert_eq!(
        r,
        b"-ERR CONFIG SET failed (possibly related to argument 'tls-cert-file') - Unable to update TLS configuration. Check server logs.\r\n"
    );
    assert_eq!(
        raw.cmd_str(&["CONFIG", "GET", "tls-cert-file"]),
        format!(
            "*2\r\n$13\r\ntls-cert-file\r\n${}\r\n{}\r\n",
            certs.p("server.crt").len(),
            certs.p("server.crt")
        )
        .into_bytes()
    );
    assert_eq!(cli_tls(port, &with_cert(&certs), &["ping"]).0, "PONG");
    // Switching client auth off applies to new connections.
    assert_eq!(
        raw.cmd_str(&["CONFIG", "SET", "tls-auth-clients", "no"]),
        b"+OK\r\n"
    );
    assert_eq!(cli_tls(port, &no_cert(&certs), &["ping"]).0, "PONG");
    // New certificates from another CA: clients must trust the new CA.
    let other = Certs::new();
    assert_eq!(
        raw.cmd_str(&[
            "CONFIG",
            "SET",
            "tls-cert-file",
            &other.p("server.crt"),
            "tls-key-file",
            &other.p("server.key")
        ]),
        b"+OK\r\n"
    );
    assert_ne!(cli_tls(port, &no_cert(&certs), &["ping"]).0, "PONG");
    assert_eq!(cli_tls(port, &no_cert(&other), &["ping"]).0, "PONG");
    // The TLS port is fixed at start.
    let r = raw.cmd_str(&["CONFIG", "SET", "tls-port", "1"]);
    assert!(r.starts_with(b"-ERR CONFIG SET failed"), "{r:?}");
}

/// `basalt-rdb` next to `basalt-server` (built here if this test binary
/// was built alone).
fn basalt_rdb() -> PathBuf {
    let server = PathBuf::from(env!("CARGO_BIN_EXE_basalt-server"));
    let bin = server.with_file_name("basalt-rdb");
    if !bin.exists() {
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "-p", "basalt-tools", "--bin", "basalt-rdb"])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if server.parent().and_then(|p| p.file_name()) == Some("release".as_ref()) {
            cmd.arg("--release");
        }
        assert!(
            cmd.status().unwrap().success(),
            "building basalt-rdb failed"
        );
    }
    bin
}

#[test]
fn basalt_rdb_import_over_tls() {
    if !RedisServer::available() {
        eprintln!("redis-server not installed; skipped (CI installs it)");
        return;
    }
    // A dump made by the real Redis.
    let r = RedisServer::start(&[]);
    let mut rr = r.raw();
    rr.cmd_str(&["SET", "s", "string"]);
    rr.cmd_str(&["RPUSH", "l", "a", "b", "c"]);
    rr.cmd_str(&["HSET", "h", "f", "v"]);
    rr.cmd_str(&["SET", "ttl", "x", "EX", "1000"]);
    assert_eq!(rr.cmd_str(&["SAVE"]), b"+OK\r\n");
    let dump = r.dir().join("dump.rdb");
    assert!(dump.exists());

    let certs = Certs::new();
    let (s, port) = start_tls(&certs, &["--requirepass", "s3cret"]);
    let to = format!("127.0.0.1:{port}");
    let run = |extra: &[&str]| {
        let out = Command::new(basalt_rdb())
            .arg("import")
            .arg(&dump)
            .args(["--to", &to, "--password", "s3cret", "--quiet"])
            .args(extra)
            .stdin(Stdio::null())
            .output()
            .expect("basalt-rdb");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    // Without TLS on a TLS port, or without a client certificate: refused.
    let (ok, text) = run(&[]);
    assert!(!ok, "{text}");
    let (ok, text) = run(&["--tls", "--cacert", &certs.p("ca.crt")]);
    assert!(!ok && text.contains("TLS"), "{text}");
    // An untrusted server: refused.
    let other = Certs::new();
    let (ok, text) = run(&[
        "--tls",
        "--cacert",
        &other.p("ca.crt"),
        "--cert",
        &certs.p("client.crt"),
        "--key",
        &certs.p("client.key"),
    ]);
    assert!(!ok && text.contains("TLS handshake failed"), "{text}");
    let (ok, text) = run(&[
        "--tls",
        "--cacert",
        &certs.p("ca.crt"),
        "--cert",
        &certs.p("client.crt"),
        "--key",
        &certs.p("client.key"),
    ]);
    assert!(ok, "{text}");
    let mut b = s.raw();
    assert_eq!(b.cmd_str(&["AUTH", "s3cret"]), b"+OK\r\n");
    assert_eq!(b.cmd_str(&["GET", "s"]), b"$6\r\nstring\r\n");
    assert_eq!(
        b.cmd_str(&["LRANGE", "l", "0", "-1"]),
        b"*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n"
    );
    assert_eq!(b.cmd_str(&["HGET", "h", "f"]), b"$1\r\nv\r\n");
    let ttl = String::from_utf8_lossy(&b.cmd_str(&["TTL", "ttl"])).into_owned();
    let secs: i64 = ttl.trim_start_matches(':').trim().parse().unwrap();
    assert!((900..=1000).contains(&secs), "{ttl}");
    assert_eq!(b.cmd_str(&["DBSIZE"]), b":4\r\n");
    // `export` takes the same options.
    let out_rdb = certs.path("export.rdb");
    let out = Command::new(basalt_rdb())
        .arg("export")
        .args(["--from", &to, "--password", "s3cret", "--quiet", "--tls"])
        .args(["--cacert", &certs.p("ca.crt")])
        .args([
            "--cert",
            &certs.p("client.crt"),
            "--key",
            &certs.p("client.key"),
        ])
        .arg("-o")
        .arg(&out_rdb)
        .output()
        .expect("basalt-rdb export");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::metadata(&out_rdb).unwrap().len() > 20);
}

#[test]
fn redis_crate_connects_over_tls() {
    let certs = Certs::new();
    let (_s, port) = start_tls(&certs, &[]);
    let read = |n: &str| std::fs::read(certs.path(n)).unwrap();
    let tls = |client: bool| redis::TlsCertificates {
        client_tls: client.then(|| redis::ClientTlsConfig {
            client_cert: read("client.crt"),
            client_key: read("client.key"),
        }),
        root_cert: Some(read("ca.crt")),
    };
    let url = format!("rediss://127.0.0.1:{port}/");
    let client = redis::Client::build_with_tls(url.as_str(), tls(true)).unwrap();
    let mut c = client.get_connection().expect("TLS connection");
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut c).unwrap();
    let v: String = redis::cmd("GET").arg("k").query(&mut c).unwrap();
    assert_eq!(v, "v");
    let big = vec![7u8; 200_000];
    let _: () = redis::cmd("SET")
        .arg("big")
        .arg(&big)
        .query(&mut c)
        .unwrap();
    let got: Vec<u8> = redis::cmd("GET").arg("big").query(&mut c).unwrap();
    assert_eq!(got, big);
    // Without a client certificate (tls-auth-clients yes): no service.
    let client = redis::Client::build_with_tls(url.as_str(), tls(false)).unwrap();
    let served = client
        .get_connection()
        .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
    assert!(served.is_err(), "{served:?}");
}
