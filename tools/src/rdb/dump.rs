//! `basalt-rdb dump FILE --format json|jsonl|resp`.

use super::filter::{Filter, FilterArgs};
use super::json::Json;
use super::{resp, scan, scan_borrowed, Result};
use basalt_rdb::{EncodeOptions, Item, Target};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON document in the corpus schema: aux, functions, databases
    /// with keys sorted by raw bytes (buffers the output; see --no-sort).
    Json,
    /// One key record per line, with its db, in file order (constant memory).
    Jsonl,
    /// Commands for `redis-cli --pipe`: SELECT, plain commands and PEXPIREAT,
    /// or RESTORE with --restore.
    Resp,
}

/// Write every key with its full value.
///
/// Byte strings follow the corpus convention: a JSON string when UTF-8
/// without control characters, {"b64": ...} otherwise, and
/// {"len": N, "sha256": ...} beyond 16 KiB unless --full-values.
///
/// Examples:
///   basalt-rdb dump dump.rdb --format json > dump.json
///   basalt-rdb dump dump.rdb --format jsonl --match 'user:*' | jq .key
///   basalt-rdb dump dump.rdb --format resp | redis-cli --pipe
///   basalt-rdb dump dump.rdb --format resp --restore --rdb-version 10 --replace | redis-cli --pipe
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The dump.
    pub file: PathBuf,
    /// Output format.
    #[arg(long, short, value_enum, default_value = "json")]
    pub format: Format,
    /// Output file (default stdout).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Write byte strings over 16 KiB in full instead of {"len", "sha256"}.
    #[arg(long)]
    pub full_values: bool,
    /// json: keep file order and stream (constant memory; aux and functions come last).
    #[arg(long)]
    pub no_sort: bool,
    /// resp: emit RESTORE with DUMP payloads instead of plain commands.
    #[arg(long)]
    pub restore: bool,
    /// resp --restore: payload version (9, 10, 11, 12 or 80 for Valkey 9).
    #[arg(long, default_value_t = 10)]
    pub rdb_version: u32,
    /// resp: replace existing keys (DEL first, or RESTORE ... REPLACE).
    #[arg(long)]
    pub replace: bool,
    #[command(flatten)]
    pub filter: FilterArgs,
}

/// jsonl: bytes formatted before the buffer goes to the output thread:
/// below the thread's 1 MiB buffers, so that a record or two more rarely
/// makes one grow.
const JSONL_BUF: usize = (1 << 20) - (64 << 10);

/// The writer target for a version number given on the command line.
pub fn target(v: u32) -> Result<Target> {
    Ok(match v {
        9 => Target::Redis9,
        10 => Target::Redis10,
        11 => Target::Redis11,
        12 => Target::Redis12,
        80 => Target::Valkey80,
        _ => {
            return Err(format!(
                "RDB version {v} cannot be written: choose 9 (Redis 5-6.2), 10 (7.0), 11 (7.2, Valkey 7.2-8), 12 (7.4+) or 80 (Valkey 9)"
            )
            .into())
        }
    })
}

/// Runs `dump`.
pub fn run(a: &Args, quiet: bool) -> Result<ExitCode> {
    let filter = Filter::new(&a.filter)?;
    let mut out = super::output(a.output.as_ref())?;
    match a.format {
        Format::Json if !a.no_sort => json_sorted(a, &filter, quiet, &mut out)?,
        Format::Json => json_streamed(a, &filter, quiet, &mut out)?,
        Format::Jsonl => {
            // Records are formatted straight into the output thread's
            // buffers: a full one is exchanged for an empty one, no copy.
            let mut j = Json::new(a.full_values);
            j.out = Vec::with_capacity(1 << 20);
            let end = scan_borrowed(
                &a.file,
                super::decode_options(),
                quiet,
                |_| {},
                |item| {
                    if let Item::Entry(e) = item {
                        if filter.accepts(e) {
                            j.key_record(e, true);
                            j.out.push(b'\n');
                            if j.out.len() >= JSONL_BUF {
                                j.out = out.exchange(std::mem::take(&mut j.out))?;
                            }
                        }
                    }
                    Ok(())
                },
            )?;
            out.write_all(&j.out)?;
            reader_warnings(&end.warnings);
        }
        Format::Resp => {
            let opts = EncodeOptions::for_target(target(a.rdb_version)?);
            let mut buf = Vec::with_capacity(1 << 20);
            let mut db = None;
            let mut warnings = Vec::new();
            let end = scan(
                &a.file,
                super::decode_options(),
                quiet,
                |_| {},
                |item| {
                    let Item::Entry(e) = item else { return Ok(()) };
                    if !filter.accepts(&e) || e.value.is_empty_collection() {
                        return Ok(());
                    }
                    if db != Some(e.db) {
                        resp::command(&mut buf, &[b"SELECT", e.db.to_string().as_bytes()]);
                        db = Some(e.db);
                    }
                    if a.restore {
                        resp::restore(&e, &opts, a.replace, &mut buf)?;
                    } else if let Err(m) = resp::plain(&e, a.replace, &mut buf, &mut warnings) {
                        warnings.push(m);
                    }
                    if buf.len() > 1 << 20 {
                        out.write_all(&buf)?;
                        buf.clear();
                    }
                    Ok(())
                },
            )?;
            out.write_all(&buf)?;
            reader_warnings(&end.warnings);
            for w in &warnings {
                eprintln!("basalt-rdb: warning: {w}");
            }
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn header(j: &mut Json, a: &Args, f: basalt_rdb::Format, size: u64) {
    j.raw("{\"schema\": \"basalt-rdb-dump/1\",\n\"file\": ");
    j.str(
        &a.file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    );
    j.raw(",\n\"size\": ");
    j.int(size);
    j.raw(",\n\"header\": ");
    j.str(&String::from_utf8_lossy(&f.header()));
    j.raw(",\n\"magic\": ");
    j.str(f.magic_str());
    j.raw(",\n\"rdb_version\": ");
    j.int(f.version);
}

fn aux_member(j: &mut Json, aux: &[(Vec<u8>, Vec<u8>)]) {
    j.raw(",\n\"aux\": [");
    for (n, (k, v)) in aux.iter().enumerate() {
        j.raw(if n > 0 { ", [" } else { "[" });
        j.bytes(k);
        j.raw(", ");
        j.bytes(v);
        j.raw("]");
    }
    j.raw("]");
}

/// The reader's warnings (skipped key metadata or module values, an
/// unfinished slot import), on stderr.
fn reader_warnings(ws: &[String]) {
    for w in ws {
        eprintln!("basalt-rdb: warning: {w}");
    }
}

/// An unfinished slot import: job name, (first, last) slot ranges.
type SlotImport = (Vec<u8>, Vec<(u64, u64)>);

/// `"slot_imports": [{"name": N, "ranges": [[first, last], ...]}, ...]`
/// when the dump records unfinished Valkey slot imports (opcode 243).
fn slot_imports_member(j: &mut Json, imports: &[SlotImport]) {
    if imports.is_empty() {
        return;
    }
    j.raw(",\n\"slot_imports\": [");
    for (n, (name, ranges)) in imports.iter().enumerate() {
        j.raw(if n > 0 {
            ", {\"name\": "
        } else {
            "{\"name\": "
        });
        j.bytes(name);
        j.raw(", \"ranges\": [");
        for (i, (a, z)) in ranges.iter().enumerate() {
            j.raw(if i > 0 { ", [" } else { "[" });
            j.int(*a);
            j.raw(", ");
            j.int(*z);
            j.raw("]");
        }
        j.raw("]}");
    }
    j.raw("]");
}

fn functions_member(j: &mut Json, fs: &mut [basalt_rdb::Function]) {
    if fs.is_empty() {
        return;
    }
    fs.sort_by(|a, b| a.library.cmp(&b.library));
    j.raw(",\n\"functions\": [\n");
    for (n, f) in fs.iter().enumerate() {
        if n > 0 {
            j.raw(",\n");
        }
        j.function(f);
    }
    j.raw("\n]");
}

/// A key and its rendered record.
type Rendered = (Vec<u8>, Vec<u8>);

fn json_sorted(a: &Args, filter: &Filter, quiet: bool, out: &mut dyn Write) -> Result<()> {
    let mut aux = Vec::new();
    let mut functions = Vec::new();
    let mut imports = Vec::new();
    // Per db: (key, rendered record).
    let mut dbs: BTreeMap<u64, Vec<Rendered>> = BTreeMap::new();
    let mut j = Json::new(a.full_values);
    let end = scan(
        &a.file,
        super::decode_options(),
        quiet,
        |_| {},
        |item| {
            match item {
                Item::Aux { key, value } => aux.push((key, value)),
                Item::Function(f) => functions.push(f),
                Item::SlotImport { name, ranges } => imports.push((name, ranges)),
                Item::Entry(e) if filter.accepts(&e) => {
                    j.out.clear();
                    j.key_record(&e, false);
                    dbs.entry(e.db).or_default().push((e.key, j.out.clone()));
                }
                _ => {}
            }
            Ok(())
        },
    )?;
    let mut j = Json::new(a.full_values);
    header(&mut j, a, end.format, end.size);
    aux_member(&mut j, &aux);
    functions_member(&mut j, &mut functions);
    slot_imports_member(&mut j, &imports);
    j.raw(",\n\"databases\": [");
    for (n, (db, keys)) in dbs.iter_mut().enumerate() {
        keys.sort_unstable_by(|x, y| x.0.cmp(&y.0));
        j.raw(if n > 0 { ",\n{\"db\": " } else { "\n{\"db\": " });
        j.int(*db);
        j.raw(", \"key_count\": ");
        j.int(keys.len());
        j.raw(", \"keys\": [\n");
        for (i, (_, rec)) in keys.iter().enumerate() {
            if i > 0 {
                j.raw(",\n");
            }
            j.out.extend_from_slice(rec);
            if j.out.len() > 64 << 10 {
                out.write_all(&j.out)?;
                j.out.clear();
            }
        }
        j.raw("\n]}");
    }
    j.raw("\n]");
    checksum_member(&mut j, end.checksum);
    j.raw("\n}\n");
    out.write_all(&j.out)?;
    reader_warnings(&end.warnings);
    Ok(())
}

fn checksum_member(j: &mut Json, c: Option<basalt_rdb::Checksum>) {
    j.raw(",\n\"checksum\": ");
    j.str(&match c {
        Some(basalt_rdb::Checksum::Verified(c)) => format!("{c:016x}"),
        Some(basalt_rdb::Checksum::Disabled) => "disabled".into(),
        Some(basalt_rdb::Checksum::Unchecked(c)) => format!("{c:016x} (not verified)"),
        _ => "none".into(),
    });
}

fn json_streamed(a: &Args, filter: &Filter, quiet: bool, out: &mut dyn Write) -> Result<()> {
    let mut aux = Vec::new();
    let mut functions = Vec::new();
    let mut imports = Vec::new();
    let mut j = Json::new(a.full_values);
    let size = std::fs::metadata(&a.file).map(|m| m.len()).unwrap_or(0);
    let mut db: Option<u64> = None;
    let mut first = true;
    let fmt = std::cell::Cell::new(None);
    let mut started = false;
    let end = scan(
        &a.file,
        super::decode_options(),
        quiet,
        |f| fmt.set(Some(f)),
        |item| {
            if !started {
                started = true;
                if let Some(f) = fmt.get() {
                    header(&mut j, a, f, size);
                }
                j.raw(",\n\"databases\": [");
            }
            match item {
                Item::Aux { key, value } => aux.push((key, value)),
                Item::Function(f) => functions.push(f),
                Item::SlotImport { name, ranges } => imports.push((name, ranges)),
                Item::Entry(e) if filter.accepts(&e) => {
                    if db != Some(e.db) {
                        j.raw(if db.is_some() {
                            "\n]},\n{\"db\": "
                        } else {
                            "\n{\"db\": "
                        });
                        j.int(e.db);
                        j.raw(", \"keys\": [\n");
                        db = Some(e.db);
                        first = true;
                    }
                    if !first {
                        j.raw(",\n");
                    }
                    first = false;
                    j.key_record(&e, false);
                    if j.out.len() > 64 << 10 {
                        out.write_all(&j.out)?;
                        j.out.clear();
                    }
                }
                _ => {}
            }
            Ok(())
        },
    )?;
    if !started {
        header(&mut j, a, end.format, size);
        j.raw(",\n\"databases\": [");
    }
    j.raw(if db.is_some() { "\n]}\n]" } else { "\n]" });
    aux_member(&mut j, &aux);
    functions_member(&mut j, &mut functions);
    slot_imports_member(&mut j, &imports);
    checksum_member(&mut j, end.checksum);
    j.raw("\n}\n");
    out.write_all(&j.out)?;
    reader_warnings(&end.warnings);
    Ok(())
}
