//! `basalt-rdb info FILE`: what a dump holds, at a glance.

use super::filter::{Filter, FilterArgs};
use super::{rdb_type_name_in, scan, Result};
use basalt_rdb::{Checksum, Item};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Show the header, aux fields, per-db key and expire counts, the
/// type/encoding histogram, functions and the checksum status.
///
/// Example:
///   basalt-rdb info dump.rdb
///   basalt-rdb info dump.rdb --json --db 0
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The dump.
    pub file: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub filter: FilterArgs,
}

#[derive(Default)]
struct Db {
    keys: u64,
    expires: u64,
    expired: u64,
    resize: Option<(u64, u64)>,
}

/// Runs `info`.
pub fn run(a: &Args, quiet: bool) -> Result<ExitCode> {
    let filter = Filter::new(&a.filter)?;
    let mut aux: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut dbs: BTreeMap<u64, Db> = BTreeMap::new();
    let mut types: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut encodings: BTreeMap<u8, u64> = BTreeMap::new();
    let mut modules: BTreeMap<String, u64> = BTreeMap::new();
    let mut functions: Vec<Vec<u8>> = Vec::new();
    let mut slots = 0u64;
    let mut slot_imports = 0u64;
    let mut import_ranges = 0u64;
    let mut module_aux = 0u64;
    let mut cur_db = 0u64;
    let mut format = None;
    let end = scan(
        &a.file,
        super::decode_options(),
        quiet,
        |f| format = Some(f),
        |item| {
            match item {
                Item::Aux { key, value } => aux.push((key, value)),
                Item::SelectDb(d) => cur_db = d,
                Item::ResizeDb {
                    db_size,
                    expires_size,
                } => {
                    dbs.entry(cur_db).or_default().resize = Some((db_size, expires_size));
                }
                Item::Entry(e) => {
                    if !filter.accepts(&e) {
                        return Ok(());
                    }
                    let d = dbs.entry(e.db).or_default();
                    d.keys += 1;
                    if let Some(x) = e.expire_ms {
                        d.expires += 1;
                        if x <= filter.now {
                            d.expired += 1;
                        }
                    }
                    *types.entry(e.value.type_name()).or_default() += 1;
                    *encodings.entry(e.rdb_type).or_default() += 1;
                    if let basalt_rdb::Value::Module(m) = &e.value {
                        *modules.entry(m.name.clone()).or_default() += 1;
                    }
                }
                Item::Function(f) => functions.push(f.library),
                Item::SlotInfo { .. } => slots += 1,
                Item::SlotImport { ranges, .. } => {
                    slot_imports += 1;
                    import_ranges += ranges.len() as u64;
                }
                Item::ModuleAux { .. } => module_aux += 1,
                _ => {}
            }
            Ok(())
        },
    )?;
    let checksum = match end.checksum {
        Some(Checksum::NotPresent) | None => "none (RDB < 5)".to_string(),
        Some(Checksum::Disabled) => "disabled (zero trailer)".to_string(),
        Some(Checksum::Verified(c)) => format!("ok {c:016x}"),
        Some(Checksum::Unchecked(c)) => format!("not verified {c:016x}"),
    };
    let header = String::from_utf8_lossy(&end.format.header()).into_owned();
    let total: u64 = dbs.values().map(|d| d.keys).sum();
    let mut out = super::output(None)?;
    if a.json {
        let mut j = super::json::Json::new(false);
        j.raw("{\"file\": ");
        j.str(&a.file.display().to_string());
        j.raw(", \"size\": ");
        j.int(end.size);
        j.raw(", \"header\": ");
        j.str(&header);
        j.raw(", \"magic\": ");
        j.str(end.format.magic_str());
        j.raw(", \"rdb_version\": ");
        j.int(end.format.version);
        j.raw(", \"checksum\": ");
        j.str(&checksum);
        j.raw(",\n\"aux\": [");
        for (n, (k, v)) in aux.iter().enumerate() {
            j.raw(if n > 0 { ", [" } else { "[" });
            j.bytes(k);
            j.raw(", ");
            j.bytes(v);
            j.raw("]");
        }
        j.raw("],\n\"keys\": ");
        j.int(total);
        j.raw(", \"databases\": [");
        for (n, (db, d)) in dbs.iter().filter(|(_, d)| d.keys > 0).enumerate() {
            j.raw(if n > 0 { ", " } else { "" });
            j.raw("{\"db\": ");
            j.int(*db);
            j.raw(", \"keys\": ");
            j.int(d.keys);
            j.raw(", \"expires\": ");
            j.int(d.expires);
            j.raw(", \"already_expired\": ");
            j.int(d.expired);
            if let Some((s, e)) = d.resize {
                j.raw(", \"resizedb\": [");
                j.int(s);
                j.raw(", ");
                j.int(e);
                j.raw("]");
            }
            j.raw("}");
        }
        j.raw("],\n\"types\": {");
        for (n, (t, c)) in types.iter().enumerate() {
            j.raw(if n > 0 { ", " } else { "" });
            j.str(t);
            j.raw(": ");
            j.int(*c);
        }
        j.raw("}, \"rdb_types\": {");
        for (n, (t, c)) in encodings.iter().enumerate() {
            j.raw(if n > 0 { ", " } else { "" });
            j.str(&format!("{t}:{}", rdb_type_name_in(end.format, *t)));
            j.raw(": ");
            j.int(*c);
        }
        j.raw("}, \"functions\": [");
        for (n, f) in functions.iter().enumerate() {
            j.raw(if n > 0 { ", " } else { "" });
            j.bytes(f);
        }
        j.raw("], \"slot_info\": ");
        j.int(slots);
        j.raw(", \"slot_imports\": ");
        j.int(slot_imports);
        j.raw(", \"module_aux\": ");
        j.int(module_aux);
        j.raw(", \"warnings\": [");
        for (n, w) in end.warnings.iter().enumerate() {
            j.raw(if n > 0 { ", " } else { "" });
            j.str(w);
        }
        j.raw("]}\n");
        out.write_all(&j.out)?;
    } else {
        let mut s = String::new();
        use std::fmt::Write as _;
        let _ = writeln!(s, "file:        {} ({} bytes)", a.file.display(), end.size);
        let _ = writeln!(s, "format:      {header} ({})", end.format);
        let _ = writeln!(s, "checksum:    {checksum}");
        let _ = writeln!(s, "aux:");
        for (k, v) in &aux {
            let _ = writeln!(
                s,
                "  {:<14} {}",
                String::from_utf8_lossy(k),
                String::from_utf8_lossy(v)
            );
        }
        let _ = writeln!(s, "keys:        {total}");
        for (db, d) in dbs.iter().filter(|(_, d)| d.keys > 0 || d.resize.is_some()) {
            let _ = write!(
                s,
                "  db{db:<3} keys={} expires={} already_expired={}",
                d.keys, d.expires, d.expired
            );
            if let Some((sz, ex)) = d.resize {
                let _ = write!(s, " (resizedb {sz}/{ex})");
            }
            s.push('\n');
        }
        let _ = writeln!(s, "types:");
        for (t, c) in &types {
            let _ = writeln!(s, "  {t:<8} {c}");
        }
        let _ = writeln!(s, "encodings (on disk):");
        for (t, c) in &encodings {
            let _ = writeln!(s, "  {t:>2} {:<22} {c}", rdb_type_name_in(end.format, *t));
        }
        for (m, c) in &modules {
            let _ = writeln!(s, "module type {m}: {c} keys");
        }
        if !functions.is_empty() {
            let names: Vec<_> = functions
                .iter()
                .map(|f| String::from_utf8_lossy(f))
                .collect();
            let _ = writeln!(s, "functions:   {} ({})", functions.len(), names.join(", "));
        }
        if slots > 0 {
            let _ = writeln!(s, "slot info:   {slots} slots");
        }
        if slot_imports > 0 {
            let _ = writeln!(
                s,
                "slot import: {slot_imports} unfinished jobs ({import_ranges} slot ranges)"
            );
        }
        if module_aux > 0 {
            let _ = writeln!(s, "module aux:  {module_aux}");
        }
        for w in &end.warnings {
            let _ = writeln!(s, "warning: {w}");
        }
        out.write_all(s.as_bytes())?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
