//! TLS for client connections (rustls with the *ring* provider), set up
//! from Redis's option names:
//!
//! - `tls-port`: a TLS listener beside the plain `port` (either may be 0).
//! - `tls-cert-file` / `tls-key-file`: the server's chain and key (PEM).
//! - `tls-ca-cert-file` / `tls-ca-cert-dir`: roots that client
//!   certificates are checked against.
//! - `tls-auth-clients yes|optional|no`: client certificates required,
//!   checked if offered, or not asked for.
//! - `tls-protocols "TLSv1.2 TLSv1.3"`: rustls has no TLSv1 / TLSv1.1;
//!   those are skipped with a warning (an error if nothing else is left).
//! - `tls-ciphersuites` (TLS 1.3) and `tls-ciphers` (TLS 1.2): OpenSSL
//!   names, colon-separated, narrowed to what rustls implements. OpenSSL
//!   cipher-string keywords (`HIGH`, `!aNULL`, …) cannot be mapped and
//!   leave rustls's full list for that version.
//!
//! The connection code is generic over the stream, so a TLS connection
//! runs the same batch loop as a plain one (monomorphised: the plain path
//! pays nothing for TLS).

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedCipherSuite};

use crate::config::Config;

/// The option names that change the TLS context (CONFIG SET rebuilds it).
pub const CONTEXT_OPTIONS: &[&str] = &[
    "tls-cert-file",
    "tls-key-file",
    "tls-key-file-pass",
    "tls-ca-cert-file",
    "tls-ca-cert-dir",
    "tls-auth-clients",
    "tls-protocols",
    "tls-ciphers",
    "tls-ciphersuites",
    "tls-session-caching",
    "tls-session-cache-size",
];

/// OpenSSL's names for the suites rustls implements, paired with rustls's.
const SUITE_NAMES: &[(&str, &str)] = &[
    ("TLS_AES_256_GCM_SHA384", "TLS13_AES_256_GCM_SHA384"),
    ("TLS_AES_128_GCM_SHA256", "TLS13_AES_128_GCM_SHA256"),
    (
        "TLS_CHACHA20_POLY1305_SHA256",
        "TLS13_CHACHA20_POLY1305_SHA256",
    ),
    (
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    ),
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    ),
    (
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    ),
    (
        "ECDHE-RSA-AES256-GCM-SHA384",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    ),
    (
        "ECDHE-RSA-AES128-GCM-SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    ),
    (
        "ECDHE-RSA-CHACHA20-POLY1305",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    ),
];

fn rustls_name(s: &SupportedCipherSuite) -> String {
    format!("{:?}", s.suite())
}

fn is_tls13(s: &SupportedCipherSuite) -> bool {
    matches!(s, SupportedCipherSuite::Tls13(_))
}

/// Narrows `all` (the suites of one TLS version) to those named in an
/// OpenSSL-style list. `None`: the list cannot be mapped (keep all).
fn pick_suites(
    option: &str,
    list: &str,
    all: &[SupportedCipherSuite],
    warnings: &mut Vec<String>,
) -> Result<Option<Vec<SupportedCipherSuite>>, String> {
    let list = list.trim();
    if list.is_empty() {
        return Ok(None);
    }
    let mut picked = Vec::new();
    for name in list.split(':').map(str::trim).filter(|n| !n.is_empty()) {
        let upper = name.to_ascii_uppercase();
        let rustls = SUITE_NAMES
            .iter()
            .find(|(o, r)| *o == upper || *r == upper)
            .map(|(_, r)| *r);
        match rustls.and_then(|r| all.iter().find(|s| rustls_name(s) == r)) {
            Some(s) => {
                if !picked
                    .iter()
                    .any(|p: &SupportedCipherSuite| p.suite() == s.suite())
                {
                    picked.push(*s);
                }
            }
            None if upper
                .bytes()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
                || name.starts_with(['!', '-', '+', '@']) =>
            {
                warnings.push(format!(
                    "{option}: OpenSSL cipher keyword '{name}' cannot be mapped; using every suite rustls offers"
                ));
                return Ok(None);
            }
            None => warnings.push(format!(
                "{option}: cipher '{name}' is not implemented by rustls; skipped"
            )),
        }
    }
    if picked.is_empty() {
        return Err(format!(
            "{option}: none of the ciphers in '{list}' is supported (rustls offers: {})",
            SUITE_NAMES
                .iter()
                .filter(|(_, r)| all.iter().any(|s| rustls_name(s) == *r))
                .map(|(o, _)| *o)
                .collect::<Vec<_>>()
                .join(":")
        ));
    }
    Ok(Some(picked))
}

fn read_file(option: &str, path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{option} '{path}': cannot read: {e}"))
}

fn load_certs(option: &str, path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read_file(option, path)?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{option} '{path}': bad PEM: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{option} '{path}': no certificate found"));
    }
    Ok(certs)
}

fn load_key(path: &str) -> Result<PrivateKeyDer<'static>, String> {
    let pem = read_file("tls-key-file", path)?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|e| format!("tls-key-file '{path}': bad PEM: {e}"))?
        .ok_or_else(|| {
            format!(
                "tls-key-file '{path}': no private key found (encrypted keys are not supported)"
            )
        })
}

fn load_roots(cfg: &Config) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    let file = cfg.get("tls-ca-cert-file").unwrap_or("");
    if !file.is_empty() {
        for c in load_certs("tls-ca-cert-file", file)? {
            roots
                .add(c)
                .map_err(|e| format!("tls-ca-cert-file '{file}': {e}"))?;
        }
    }
    let dir = cfg.get("tls-ca-cert-dir").unwrap_or("");
    if !dir.is_empty() {
        let entries =
            std::fs::read_dir(dir).map_err(|e| format!("tls-ca-cert-dir '{dir}': {e}"))?;
        for e in entries.flatten() {
            let Ok(pem) = std::fs::read(e.path()) else {
                continue;
            };
            // Files that are not PEM certificates (hash links to the same
            // file, READMEs) are skipped, as OpenSSL's lookup would.
            for c in rustls_pemfile::certs(&mut pem.as_slice()).flatten() {
                let _ = roots.add(c);
            }
        }
    }
    Ok(roots)
}

/// Builds the server's TLS context from the configuration. The error
/// names the option and file at fault; warnings are for the log.
pub fn server_config(cfg: &Config, warnings: &mut Vec<String>) -> Result<ServerConfig, String> {
    let cert_file = cfg.get("tls-cert-file").unwrap_or("");
    let key_file = cfg.get("tls-key-file").unwrap_or("");
    if cert_file.is_empty() || key_file.is_empty() {
        return Err("TLS needs both tls-cert-file and tls-key-file".into());
    }
    if !cfg.get("tls-key-file-pass").unwrap_or("").is_empty() {
        return Err("tls-key-file-pass: encrypted private keys are not supported; decrypt the key (openssl pkey -in key.pem -out plain.pem)".into());
    }
    let certs = load_certs("tls-cert-file", cert_file)?;
    let key = load_key(key_file)?;

    let mut provider = rustls::crypto::ring::default_provider();
    let all = provider.cipher_suites.clone();
    let (v13, v12): (Vec<_>, Vec<_>) = all.iter().partition(|s| is_tls13(s));
    let v13 = pick_suites(
        "tls-ciphersuites",
        cfg.get("tls-ciphersuites").unwrap_or(""),
        &v13,
        warnings,
    )?
    .unwrap_or(v13);
    let v12 = pick_suites(
        "tls-ciphers",
        cfg.get("tls-ciphers").unwrap_or(""),
        &v12,
        warnings,
    )?
    .unwrap_or(v12);
    provider.cipher_suites = v13.into_iter().chain(v12).collect();

    let mut versions: Vec<&'static rustls::SupportedProtocolVersion> = Vec::new();
    let protocols = cfg.get("tls-protocols").unwrap_or("");
    if protocols.trim().is_empty() {
        versions = vec![&rustls::version::TLS12, &rustls::version::TLS13];
    } else {
        for p in protocols.split_whitespace() {
            match p.to_ascii_lowercase().as_str() {
                "tlsv1.2" => versions.push(&rustls::version::TLS12),
                "tlsv1.3" => versions.push(&rustls::version::TLS13),
                "tlsv1" | "tlsv1.1" => warnings.push(format!(
                    "tls-protocols: {p} is not supported by rustls; skipped"
                )),
                _ => {
                    return Err(format!("tls-protocols: invalid protocol '{p}'. Use a combination of 'TLSv1', 'TLSv1.1', 'TLSv1.2' and 'TLSv1.3'"))
                }
            }
        }
        if versions.is_empty() {
            return Err(format!(
                "tls-protocols '{protocols}': none of these is supported (use TLSv1.2 and/or TLSv1.3)"
            ));
        }
    }
    let provider = Arc::new(provider);
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls-protocols / tls-ciphers: {e}"))?;

    let auth = cfg.get("tls-auth-clients").unwrap_or("yes");
    let builder = if auth == "no" {
        builder.with_no_client_auth()
    } else {
        let roots = load_roots(cfg)?;
        if roots.is_empty() {
            return Err(format!(
                "tls-auth-clients {auth} needs tls-ca-cert-file or tls-ca-cert-dir (the CA that signs client certificates), or set tls-auth-clients no"
            ));
        }
        let mut vb = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
        if auth == "optional" {
            vb = vb.allow_unauthenticated();
        }
        let verifier = vb.build().map_err(|e| format!("tls-ca-cert-file: {e}"))?;
        builder.with_client_cert_verifier(verifier)
    };
    let mut sc = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("tls-cert-file '{cert_file}' / tls-key-file '{key_file}': {e}"))?;
    if cfg.get("tls-session-caching") == Some("no") {
        sc.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        sc.send_tls13_tickets = 0;
    } else {
        let size = cfg
            .get("tls-session-cache-size")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(20480)
            .clamp(1, 1 << 20);
        sc.session_storage = rustls::server::ServerSessionMemoryCache::new(size);
    }
    Ok(sc)
}

/// The TLS context when `tls-port` is set, else None.
pub fn from_config(cfg: &Config) -> Result<Option<Arc<ServerConfig>>, String> {
    if cfg.get("tls-port").unwrap_or("0") == "0" {
        return Ok(None);
    }
    let mut warnings = Vec::new();
    let sc = server_config(cfg, &mut warnings)?;
    for w in warnings {
        tracing::warn!("{w}");
    }
    Ok(Some(Arc::new(sc)))
}
