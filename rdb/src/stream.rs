//! Streams: RDB types 15, 19, 21, 26 and 27 (STREAM_LISTPACKS 1-5).
//!
//! On disk: a count of listpack nodes, each `master ID (16-byte string, BE) |
//! listpack`; then length, last ID, (v2+) first ID, max deleted ID, entries
//! added; then consumer groups: name, last delivered ID, (v2+) entries read,
//! the group PEL (`raw ID | delivery time ms | delivery count`), consumers
//! (`name | seen time | (v3) active time | PEL IDs`) and (v5, Redis 8.8
//! XNACK) a count of raw IDs of PEL entries that no consumer owns. Version
//! 4+ (Redis 8.6 IDMP) ends with the idempotent-producer block: duration,
//! max entries, producer count, per producer `pid | count | (iid | ms |
//! seq)...`, then iids-added and iids-duplicates (all lengths, IDs as two
//! lengths, pid and iid as strings).
//!
//! A node listpack starts with a master entry `count deleted nfields
//! field... 0`, followed by entries `flags ms-diff seq-diff [nfields]
//! (field value | value)... lp-count`. Flag 1 marks a deleted entry, flag 2
//! an entry with exactly the master fields (only values are stored).

use crate::decode::{read_blob, read_length, read_ms, read_string};
use crate::encode::{write_length, write_ms, write_string};
use crate::error::{Error, Result};
use crate::input::Input;
use crate::listpack::{self, Elem};
use crate::value::{
    Consumer, ConsumerGroup, IdmpProducer, PendingEntry, Stream, StreamEntry, StreamId, StreamIdmp,
    StreamNode,
};
use std::collections::HashSet;

const FLAG_DELETED: i64 = 1;
const FLAG_SAMEFIELDS: i64 = 2;
/// Entries per node the writer uses (Redis `stream-node-max-entries`).
const NODE_MAX_ENTRIES: usize = 100;
/// Approximate bytes per node the writer aims for (`stream-node-max-bytes`).
const NODE_MAX_BYTES: usize = 4096;

fn raw_id<I: Input>(inp: &mut I, what: &'static str) -> Result<StreamId> {
    Ok(StreamId::from_be_bytes(inp.array(what)?))
}

fn parse_node(
    blob: &[u8],
    base: u64,
    master: StreamId,
    out: &mut Vec<StreamEntry>,
    tombs: &mut Vec<StreamEntry>,
) -> Result<u64> {
    let elems = listpack::collect(blob, base)?;
    let bad = |what: &str| Error::corrupt(base, format!("stream listpack invalid: {what}"));
    let mut it = elems.iter();
    let int = |it: &mut std::slice::Iter<'_, Elem<'_>>, what: &str| -> Result<i64> {
        it.next()
            .and_then(Elem::as_int)
            .ok_or_else(|| bad(&format!("expected integer {what}")))
    };
    let count = int(&mut it, "entry count")?;
    let deleted = int(&mut it, "deleted count")?;
    let nfields = int(&mut it, "master field count")?;
    let total = match count.checked_add(deleted) {
        Some(t) if count >= 0 && deleted >= 0 && nfields >= 0 && t > 0 => t,
        _ => return Err(bad("bad master entry counts")),
    };
    let mut master_fields = Vec::with_capacity(nfields.min(1024) as usize);
    for _ in 0..nfields {
        master_fields.push(it.next().ok_or_else(|| bad("master fields"))?.to_vec());
    }
    if int(&mut it, "master terminator")? != 0 {
        return Err(bad("master entry terminator is not 0"));
    }
    let mut live = 0i64;
    for _ in 0..total {
        let flags = int(&mut it, "entry flags")?;
        let ms = int(&mut it, "ms delta")? as u64;
        let seq = int(&mut it, "seq delta")? as u64;
        let id = StreamId::new(master.ms.wrapping_add(ms), master.seq.wrapping_add(seq));
        let mut fields = Vec::new();
        let lp_count = if flags & FLAG_SAMEFIELDS != 0 {
            for f in &master_fields {
                let v = it.next().ok_or_else(|| bad("entry values"))?;
                fields.push((f.clone(), v.to_vec()));
            }
            nfields + 3
        } else {
            let n = int(&mut it, "entry field count")?;
            if n < 0 {
                return Err(bad("negative field count"));
            }
            for _ in 0..n {
                let f = it.next().ok_or_else(|| bad("entry field"))?.to_vec();
                let v = it.next().ok_or_else(|| bad("entry value"))?.to_vec();
                fields.push((f, v));
            }
            2 * n + 4
        };
        if int(&mut it, "lp-count")? != lp_count {
            return Err(bad("lp-count does not match the entry"));
        }
        if flags & FLAG_DELETED == 0 {
            live += 1;
            out.push(StreamEntry { id, fields });
        } else {
            tombs.push(StreamEntry { id, fields });
        }
    }
    if live != count {
        return Err(bad("live entry count does not match the master entry"));
    }
    if it.next().is_some() {
        return Err(bad("trailing elements after the last entry"));
    }
    Ok(total as u64)
}

/// Read a stream value of format `version` (1 to 5).
pub fn read_stream<I: Input>(inp: &mut I, version: u8) -> Result<Stream> {
    let nodes = read_length(inp, "stream node count")?;
    let mut s = Stream {
        listpack_nodes: nodes,
        ..Stream::default()
    };
    for _ in 0..nodes {
        let k_at = inp.offset();
        let key = read_string(inp, "stream node key")?;
        let key: [u8; 16] = key
            .try_into()
            .map_err(|_| Error::corrupt(k_at, "expected a 16-byte stream node key"))?;
        let master = StreamId::from_be_bytes(key);
        let (blob, base) = read_blob(inp, "stream listpack")?;
        let n = parse_node(&blob, base, master, &mut s.entries, &mut s.deleted)?;
        s.nodes.push(StreamNode { master, entries: n });
    }
    s.length = read_length(inp, "stream length")?;
    s.last_id = StreamId::new(read_length(inp, "last id")?, read_length(inp, "last id")?);
    if version >= 2 {
        s.first_id = Some(StreamId::new(
            read_length(inp, "first id")?,
            read_length(inp, "first id")?,
        ));
        s.max_deleted_id = Some(StreamId::new(
            read_length(inp, "max deleted id")?,
            read_length(inp, "max deleted id")?,
        ));
        s.entries_added = Some(read_length(inp, "entries added")?);
    }
    let ngroups = read_length(inp, "consumer group count")?;
    for _ in 0..ngroups {
        let name = read_string(inp, "group name")?;
        let last = StreamId::new(
            read_length(inp, "group last id")?,
            read_length(inp, "group last id")?,
        );
        let entries_read = if version >= 2 {
            let v = read_length(inp, "group entries read")?;
            (v != u64::MAX).then_some(v)
        } else {
            None
        };
        let npel = read_length(inp, "group PEL size")?;
        let mut pel = Vec::with_capacity(inp.capacity_for(npel));
        for _ in 0..npel {
            let id = raw_id(inp, "PEL entry id")?;
            let delivery_time_ms = read_ms(inp, "PEL delivery time")?;
            let delivery_count = read_length(inp, "PEL delivery count")?;
            pel.push(PendingEntry {
                id,
                delivery_time_ms,
                delivery_count,
            });
        }
        let known: HashSet<StreamId> = pel.iter().map(|p| p.id).collect();
        let nconsumers = read_length(inp, "consumer count")?;
        let mut consumers = Vec::with_capacity(inp.capacity_for(nconsumers));
        for _ in 0..nconsumers {
            let name = read_string(inp, "consumer name")?;
            let seen_time_ms = read_ms(inp, "consumer seen time")?;
            let active_time_ms = if version >= 3 {
                Some(read_ms(inp, "consumer active time")?)
            } else {
                None
            };
            let n = read_length(inp, "consumer PEL size")?;
            let mut cpel = Vec::with_capacity(inp.capacity_for(n));
            for _ in 0..n {
                let at = inp.offset();
                let id = raw_id(inp, "consumer PEL id")?;
                if !known.contains(&id) {
                    return Err(Error::corrupt(
                        at,
                        format!("consumer PEL entry {id} is not in the group PEL"),
                    ));
                }
                cpel.push(id);
            }
            consumers.push(Consumer {
                name,
                seen_time_ms,
                active_time_ms,
                pel: cpel,
            });
        }
        let mut nacked = Vec::new();
        if version >= 5 {
            let owned: HashSet<StreamId> = consumers
                .iter()
                .flat_map(|c| c.pel.iter().copied())
                .collect();
            let n = read_length(inp, "NACK count")?;
            nacked.reserve(inp.capacity_for(n));
            for _ in 0..n {
                let at = inp.offset();
                let id = raw_id(inp, "NACK id")?;
                if !known.contains(&id) || owned.contains(&id) {
                    return Err(Error::corrupt(
                        at,
                        format!("NACK entry {id} is not an unowned entry of the group PEL"),
                    ));
                }
                nacked.push(id);
            }
        }
        s.groups.push(ConsumerGroup {
            name,
            last_delivered_id: last,
            entries_read,
            pel,
            consumers,
            nacked,
        });
    }
    if version >= 4 {
        s.idmp = Some(Box::new(read_idmp(inp)?));
    }
    Ok(s)
}

fn read_idmp<I: Input>(inp: &mut I) -> Result<StreamIdmp> {
    let duration = read_length(inp, "IDMP duration")?;
    let max_entries = read_length(inp, "IDMP max entries")?;
    let n = read_length(inp, "IDMP producer count")?;
    let mut producers = Vec::with_capacity(inp.capacity_for(n));
    for _ in 0..n {
        let pid = read_string(inp, "IDMP producer id")?;
        let m = read_length(inp, "IDMP entry count")?;
        let mut entries = Vec::with_capacity(inp.capacity_for(m));
        for _ in 0..m {
            let iid = read_string(inp, "IDMP idempotent id")?;
            let id = StreamId::new(
                read_length(inp, "IDMP entry id")?,
                read_length(inp, "IDMP entry id")?,
            );
            entries.push((iid, id));
        }
        producers.push(IdmpProducer { pid, entries });
    }
    Ok(StreamIdmp {
        duration,
        max_entries,
        producers,
        iids_added: read_length(inp, "IDMP iids added")?,
        iids_duplicates: read_length(inp, "IDMP iids duplicates")?,
    })
}

fn write_node(out: &mut Vec<u8>, entries: &[(&StreamEntry, bool)], compress: bool) {
    let Some((first, _)) = entries.first() else {
        return;
    };
    let master = first.id;
    let live = entries.iter().filter(|(_, d)| !d).count();
    let master_fields: Vec<&[u8]> = first.fields.iter().map(|(f, _)| f.as_slice()).collect();
    let mut lp = listpack::Builder::new();
    lp.push_int(live as i64);
    lp.push_int((entries.len() - live) as i64);
    lp.push_int(master_fields.len() as i64);
    for f in &master_fields {
        lp.push(f);
    }
    lp.push_int(0);
    for (e, del) in entries {
        let same = e.fields.len() == master_fields.len()
            && e.fields
                .iter()
                .zip(&master_fields)
                .all(|((f, _), m)| f.as_slice() == *m);
        let flags = if same { FLAG_SAMEFIELDS } else { 0 } | if *del { FLAG_DELETED } else { 0 };
        lp.push_int(flags);
        lp.push_int(e.id.ms.wrapping_sub(master.ms) as i64);
        lp.push_int(e.id.seq.wrapping_sub(master.seq) as i64);
        let n = e.fields.len() as i64;
        if same {
            for (_, v) in &e.fields {
                lp.push(v);
            }
            lp.push_int(n + 3);
        } else {
            lp.push_int(n);
            for (f, v) in &e.fields {
                lp.push(f);
                lp.push(v);
            }
            lp.push_int(2 * n + 4);
        }
    }
    write_string(out, &master.to_be_bytes(), false);
    write_string(out, &lp.finish(), compress);
}

/// Write a stream value in format `version` (1 to 5). The caller has
/// checked that the version holds the stream (NACKs need 5).
pub fn write_stream(out: &mut Vec<u8>, s: &Stream, version: u8, compress: bool) {
    // The stored layout when it is consistent with the entries, else
    // nodes split by count and approximate size.
    let layout_total = s
        .nodes
        .iter()
        .try_fold(0u64, |a, n| a.checked_add(n.entries));
    let mut all: Vec<(&StreamEntry, bool)> = Vec::new();
    let mut bounds = Vec::new();
    if !s.nodes.is_empty() && layout_total == Some((s.entries.len() + s.deleted.len()) as u64) {
        let (mut i, mut j) = (0, 0);
        while i < s.entries.len() || j < s.deleted.len() {
            let take_live = match (s.entries.get(i), s.deleted.get(j)) {
                (Some(a), Some(b)) => a.id < b.id,
                (Some(_), None) => true,
                _ => false,
            };
            if take_live {
                all.extend(s.entries.get(i).map(|e| (e, false)));
                i += 1;
            } else {
                all.extend(s.deleted.get(j).map(|e| (e, true)));
                j += 1;
            }
        }
        let mut start = 0usize;
        let mut ok = true;
        for n in &s.nodes {
            let end = start.saturating_add(usize::try_from(n.entries).unwrap_or(usize::MAX));
            let first = all.get(start).map(|(e, _)| e.id);
            let live = all
                .get(start..end)
                .is_some_and(|x| x.iter().any(|(_, d)| !d));
            if first != Some(n.master) || !live {
                ok = false;
                break;
            }
            bounds.push((start, end));
            start = end;
        }
        if !ok {
            bounds.clear();
        }
    }
    if bounds.is_empty() {
        all = s.entries.iter().map(|e| (e, false)).collect();
        let mut start = 0usize;
        let mut bytes = 0usize;
        for (i, (e, _)) in all.iter().enumerate() {
            let sz: usize = 8 + e
                .fields
                .iter()
                .map(|(f, v)| f.len() + v.len() + 4)
                .sum::<usize>();
            if i > start && (i - start >= NODE_MAX_ENTRIES || bytes + sz > NODE_MAX_BYTES) {
                bounds.push((start, i));
                start = i;
                bytes = 0;
            }
            bytes += sz;
        }
        if start < all.len() {
            bounds.push((start, all.len()));
        }
    }
    write_length(out, bounds.len() as u64);
    for (a, b) in bounds {
        write_node(out, all.get(a..b).unwrap_or(&[]), compress);
    }
    write_length(out, s.length);
    write_length(out, s.last_id.ms);
    write_length(out, s.last_id.seq);
    if version >= 2 {
        let first = s
            .first_id
            .or_else(|| s.entries.first().map(|e| e.id))
            .unwrap_or_default();
        write_length(out, first.ms);
        write_length(out, first.seq);
        let md = s.max_deleted_id.unwrap_or_default();
        write_length(out, md.ms);
        write_length(out, md.seq);
        write_length(out, s.entries_added.unwrap_or(s.length));
    }
    write_length(out, s.groups.len() as u64);
    for g in &s.groups {
        write_string(out, &g.name, false);
        write_length(out, g.last_delivered_id.ms);
        write_length(out, g.last_delivered_id.seq);
        if version >= 2 {
            write_length(out, g.entries_read.unwrap_or(u64::MAX));
        }
        write_length(out, g.pel.len() as u64);
        for p in &g.pel {
            out.extend_from_slice(&p.id.to_be_bytes());
            write_ms(out, p.delivery_time_ms);
            write_length(out, p.delivery_count);
        }
        write_length(out, g.consumers.len() as u64);
        for c in &g.consumers {
            write_string(out, &c.name, false);
            write_ms(out, c.seen_time_ms);
            if version >= 3 {
                write_ms(out, c.active_time_ms.unwrap_or(c.seen_time_ms));
            }
            write_length(out, c.pel.len() as u64);
            for id in &c.pel {
                out.extend_from_slice(&id.to_be_bytes());
            }
        }
        if version >= 5 {
            write_length(out, g.nacked.len() as u64);
            for id in &g.nacked {
                out.extend_from_slice(&id.to_be_bytes());
            }
        }
    }
    if version >= 4 {
        let d = StreamIdmp::default();
        let m = s.idmp.as_deref().unwrap_or(&d);
        write_length(out, m.duration);
        write_length(out, m.max_entries);
        write_length(out, m.producers.len() as u64);
        for p in &m.producers {
            write_string(out, &p.pid, false);
            write_length(out, p.entries.len() as u64);
            for (iid, id) in &p.entries {
                write_string(out, iid, false);
                write_length(out, id.ms);
                write_length(out, id.seq);
            }
        }
        write_length(out, m.iids_added);
        write_length(out, m.iids_duplicates);
    }
}
