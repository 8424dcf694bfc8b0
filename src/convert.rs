//! Conversion between the rdb crate's neutral values and the keyspace's.
//!
//! Used by RESTORE / DUMP and by importing a Redis `dump.rdb` at first
//! start. A value the keyspace cannot hold (module data, Redis 8.8 arrays,
//! streams with IDMP or XNACK state) is a clear error naming what it is,
//! never a silent drop.

use basalt_rdb::Value as RdbValue;
use basalt_storage::stream::{Consumer, Group, Nack, NodeLimits};
use basalt_storage::{Limits, Stream, StreamId, Value};

/// Keyspace value from an RDB value, with encodings chosen by `lim`.
pub fn from_rdb(v: &RdbValue, lim: &Limits) -> Result<Value, String> {
    Ok(match v {
        RdbValue::String(b) => Value::from_bytes(b),
        RdbValue::List(items) => {
            let mut l = basalt_storage::list::List::new();
            for it in items {
                l.push(&[it.as_slice()], false, lim);
            }
            Value::List(l)
        }
        RdbValue::Set(members) => {
            let mut s = basalt_storage::set::Set::new();
            for m in members {
                s.add(m, lim);
            }
            Value::Set(s)
        }
        RdbValue::SortedSet(pairs) => {
            // Over the listpack limits the set is a skiplist from the
            // start, as Redis loads it (its listpack would lose the sign
            // of a -0 score, which a skiplist keeps).
            let longest = pairs.iter().map(|(m, _)| m.len()).max().unwrap_or(0);
            let mut z = basalt_storage::zset::ZSet::with_hint(pairs.len(), longest, lim);
            for (m, score) in pairs {
                if score.is_nan() {
                    return Err("sorted set with a NaN score".into());
                }
                z.set(m, *score, lim);
            }
            Value::ZSet(z)
        }
        RdbValue::Hash(fields) => {
            let mut h = basalt_storage::hash::Hash::new();
            for f in fields {
                h.set(&f.field, &f.value, lim);
                if let Some(at) = f.expire_ms {
                    h.set_field_expire(&f.field, at.max(1));
                }
            }
            Value::Hash(h)
        }
        RdbValue::Stream(st) => Value::Stream(Box::new(stream_from_rdb(st, lim)?)),
        other => {
            return Err(format!(
                "values of type '{}' are not supported by this Basalt build yet",
                other.type_name()
            ))
        }
    })
}

/// RDB value from a keyspace value.
pub fn to_rdb(v: &Value) -> RdbValue {
    match v {
        Value::Int(i) => RdbValue::String(itoa::Buffer::new().format(*i).as_bytes().to_vec()),
        Value::Str(b) | Value::Raw(b) => RdbValue::String(b.to_vec()),
        Value::Hash(h) => RdbValue::Hash(
            h.pairs()
                .into_iter()
                .map(|(f, v)| basalt_rdb::HashField {
                    field: f.to_vec(),
                    value: v.to_vec(),
                    expire_ms: h.field_expire(f),
                })
                .collect(),
        ),
        Value::Set(s) => RdbValue::Set(s.members()),
        Value::List(l) => RdbValue::List(l.to_vec()),
        Value::ZSet(z) => {
            let mut out = Vec::with_capacity(z.len());
            z.for_each(|m, s| out.push((m.to_vec(), s)));
            RdbValue::SortedSet(out)
        }
        Value::Stream(s) => RdbValue::Stream(Box::new(stream_to_rdb(s))),
    }
}

fn sid(id: basalt_rdb::StreamId) -> StreamId {
    StreamId::new(id.ms, id.seq)
}

fn rid(id: StreamId) -> basalt_rdb::StreamId {
    basalt_rdb::StreamId::new(id.ms, id.seq)
}

/// A keyspace stream from the rdb crate's decoded stream. Entries must be
/// in increasing ID order and PEL references consistent (the reader
/// checks consumer PELs against the group PEL).
pub fn stream_from_rdb(st: &basalt_rdb::Stream, lim: &Limits) -> Result<Stream, String> {
    if st.idmp.as_ref().is_some_and(|i| i.has_state()) {
        return Err("streams with idempotent-producer (IDMP) state are not supported".into());
    }
    if st.groups.iter().any(|g| !g.nacked.is_empty()) {
        return Err(
            "streams with negatively acknowledged (XNACK) entries are not supported".into(),
        );
    }
    let mut s = Stream::new();
    let nl = NodeLimits {
        max_bytes: lim.stream_node_bytes,
        max_entries: lim.stream_node_entries,
    };
    // Live entries and tombstones merged in ID order, placed into the
    // file's node layout when it has one (so node boundaries, and with
    // them `~` trimming and XINFO's radix-tree figures, stay as in Redis).
    let mut all: Vec<(&basalt_rdb::StreamEntry, bool)> =
        Vec::with_capacity(st.entries.len() + st.deleted.len());
    let (mut i, mut j) = (0, 0);
    while i < st.entries.len() || j < st.deleted.len() {
        let live = match (st.entries.get(i), st.deleted.get(j)) {
            (Some(a), Some(b)) => a.id < b.id,
            (Some(_), None) => true,
            _ => false,
        };
        if live {
            all.push((&st.entries[i], false));
            i += 1;
        } else {
            all.push((&st.deleted[j], true));
            j += 1;
        }
    }
    let total = st
        .nodes
        .iter()
        .try_fold(0u64, |a, n| a.checked_add(n.entries));
    let use_layout = !st.nodes.is_empty() && total == Some(all.len() as u64);
    let mut starts = std::collections::HashSet::new();
    if use_layout {
        let mut at = 0u64;
        for n in &st.nodes {
            starts.insert(at);
            at += n.entries;
        }
    } else {
        all.retain(|(_, d)| !d);
    }
    let mut prev: Option<StreamId> = None;
    for (idx, (e, deleted)) in all.iter().enumerate() {
        let id = sid(e.id);
        if prev.is_some_and(|p| id <= p) {
            return Err(format!("stream entry {id} out of order"));
        }
        prev = Some(id);
        let flat: Vec<&[u8]> = e
            .fields
            .iter()
            .flat_map(|(f, v)| [f.as_slice(), v.as_slice()])
            .collect();
        if use_layout {
            s.load_entry(id, &flat, starts.contains(&(idx as u64)), *deleted);
        } else {
            s.append(id, &flat, nl);
        }
    }
    s.drop_empty_nodes();
    let prev = st.entries.last().map(|e| sid(e.id));
    // Redis trusts the stored length even where it disagrees with the
    // live entries (dumps of old Redis versions carry such streams), and
    // so do we: XLEN and XINFO answer what Redis answers.
    s.set_len(st.length);
    let last = sid(st.last_id);
    if prev.is_some_and(|p| p > last) {
        return Err("stream last ID is smaller than its last entry".into());
    }
    s.last_id = last;
    // Older formats do not store these: derive them as Redis does when
    // loading STREAM_LISTPACKS (v1).
    s.first_id = match st.first_id {
        Some(f) => sid(f),
        _ => s.edge(true).unwrap_or_default(),
    };
    s.max_deleted = st.max_deleted_id.map(sid).unwrap_or_default();
    s.entries_added = st.entries_added.unwrap_or(st.length);
    for g in &st.groups {
        let mut grp = Group::new(sid(g.last_delivered_id), g.entries_read);
        if st.entries_added.is_none() {
            // v1: Redis estimates the read counter from the group's ID.
            grp.entries_read = s.estimate_distance(grp.last_id);
        }
        for p in &g.pel {
            grp.pel.insert(
                sid(p.id),
                Nack {
                    delivery_time: p.delivery_time_ms,
                    delivery_count: p.delivery_count,
                    consumer: std::sync::Arc::from(&[][..]),
                },
            );
        }
        for c in &g.consumers {
            let name: std::sync::Arc<[u8]> = c.name.as_slice().into();
            let mut cons = Consumer {
                seen_time: c.seen_time_ms,
                active_time: c.active_time_ms.unwrap_or(c.seen_time_ms),
                pel: Default::default(),
            };
            for id in &c.pel {
                let id = sid(*id);
                let n = grp
                    .pel
                    .get_mut(&id)
                    .ok_or_else(|| format!("consumer PEL entry {id} is not in the group PEL"))?;
                n.consumer = name.clone();
                cons.pel.insert(id);
            }
            grp.consumers.insert(name, cons);
        }
        let owned: usize = grp.consumers.values().map(|c| c.pel.len()).sum();
        if owned != grp.pel.len() {
            return Err("group PEL entries and consumer PELs do not match".into());
        }
        s.groups.insert(g.name.as_slice().into(), grp);
    }
    Ok(s)
}

/// The rdb crate's stream from a keyspace stream.
pub fn stream_to_rdb(s: &Stream) -> basalt_rdb::Stream {
    let mut entries = Vec::new();
    let mut deleted = Vec::new();
    s.for_each_stored(|id, f, del| {
        let e = basalt_rdb::StreamEntry {
            id: rid(id),
            fields: f
                .chunks(2)
                .map(|p| {
                    (
                        p[0].to_vec(),
                        p.get(1).map_or_else(Vec::new, |v| v.to_vec()),
                    )
                })
                .collect(),
        };
        if del {
            deleted.push(e);
        } else {
            entries.push(e);
        }
    });
    let nodes = s
        .layout()
        .into_iter()
        .map(|(m, n)| basalt_rdb::StreamNode {
            master: rid(m),
            entries: n,
        })
        .collect();
    let groups = s
        .groups
        .iter()
        .map(|(name, g)| basalt_rdb::ConsumerGroup {
            name: name.to_vec(),
            last_delivered_id: rid(g.last_id),
            entries_read: g.entries_read,
            pel: g
                .pel_range(StreamId::MIN)
                .map(|(id, n)| basalt_rdb::PendingEntry {
                    id: rid(id),
                    delivery_time_ms: n.delivery_time,
                    delivery_count: n.delivery_count,
                })
                .collect(),
            nacked: Vec::new(),
            consumers: g
                .consumers
                .iter()
                .map(|(cn, c)| basalt_rdb::Consumer {
                    name: cn.to_vec(),
                    seen_time_ms: c.seen_time,
                    active_time_ms: Some(c.active_time),
                    pel: c.pel.iter().map(|id| rid(*id)).collect(),
                })
                .collect(),
        })
        .collect();
    basalt_rdb::Stream {
        entries,
        length: s.len(),
        last_id: rid(s.last_id),
        first_id: Some(rid(s.first_id)),
        max_deleted_id: Some(rid(s.max_deleted)),
        entries_added: Some(s.entries_added),
        groups,
        listpack_nodes: s.node_count() as u64,
        nodes,
        deleted,
        idmp: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Redis 8.8 arrays and Valkey 9.2 path hashes have no keyspace
    /// equivalent: RESTORE and the
    /// dump.rdb import refuse them by name, like module values.
    #[test]
    fn arrays_and_path_hashes_are_refused_by_name() {
        let a = basalt_rdb::Array {
            insert_idx: Some(3),
            elements: vec![(0, basalt_rdb::ArrayElem::Int(42))],
        };
        let err = from_rdb(&RdbValue::Array(Box::new(a)), &Limits::default())
            .err()
            .unwrap_or_default();
        assert_eq!(
            err,
            "values of type 'array' are not supported by this Basalt build yet"
        );
        // Valkey 9.2 path hashes likewise.
        let ph = basalt_rdb::PathHash {
            paths: vec![(b"p".to_vec(), vec![(b"f".to_vec(), b"v".to_vec())])],
        };
        let err = from_rdb(&RdbValue::PathHash(Box::new(ph)), &Limits::default())
            .err()
            .unwrap_or_default();
        assert_eq!(
            err,
            "values of type 'path-hash' are not supported by this Basalt build yet"
        );
    }

    /// A sorted set over the listpack limits loads as a skiplist from the
    /// start, so a -0 score keeps its sign (Redis's RESTORE does the
    /// same); one within the limits is a listpack, where -0 becomes 0 as
    /// in Redis.
    #[test]
    fn negative_zero_scores_load_as_redis_loads_them() {
        let lim = Limits::default();
        let pairs = |n: usize| {
            let mut v: Vec<(Vec<u8>, f64)> = (0..n)
                .map(|i| (format!("m{i}").into_bytes(), i as f64 + 1.0))
                .collect();
            // First, while an incrementally built set would still be a
            // listpack.
            v.insert(0, (b"neg".to_vec(), -0.0));
            v
        };
        for (n, sign_kept) in [(lim.zset_entries, true), (3, false)] {
            let v = from_rdb(&RdbValue::SortedSet(pairs(n)), &lim).expect("loads");
            let Value::ZSet(z) = v else {
                panic!("not a zset")
            };
            let s = z.score(b"neg").expect("member");
            assert_eq!(s, 0.0);
            assert_eq!(
                s.is_sign_negative(),
                sign_kept,
                "{} members ({})",
                n + 1,
                z.encoding_name()
            );
        }
    }
}
