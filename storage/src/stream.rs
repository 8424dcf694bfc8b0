//! Streams: entries with 128-bit IDs, packed in nodes, plus consumer groups.
//!
//! Layout, chosen to cost per entry about what Redis's listpacks under a
//! radix tree cost:
//!
//! - A `BTreeMap` from a node's *master ID* (the first ID ever appended to
//!   it) to a [`Node`]. A node holds up to `stream-node-max-entries`
//!   entries (live or deleted) in one byte buffer, with the field names of
//!   its first entry kept once (Redis's "master entry"): an entry whose
//!   fields are exactly those stores only its values.
//! - Entry encoding inside a node's buffer:
//!   `flags u8 | ms-delta varint | seq-delta varint | [nfields varint]
//!   | (len varint | bytes)...` where flags bit 0 = deleted, bit 1 = same
//!   fields as the master (then only values follow). Deltas are relative
//!   to the master ID.
//! - XDEL and exact trimming flip the deleted flag in place; a node whose
//!   live count drops to 0 is dropped. Approximate trimming drops whole
//!   nodes only, so node boundaries must match Redis's for `~` to trim
//!   the same entries: the split rule uses the byte size the node would
//!   have as a Redis listpack (tracked in `lp_bytes`).
//!
//! Consumer groups keep a global PEL (ID → [`Nack`]) and per-consumer PEL
//! sets, in name/ID order as Redis's radix trees iterate.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::sync::Arc;

/// A stream entry ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    pub const fn new(ms: u64, seq: u64) -> Self {
        StreamId { ms, seq }
    }

    pub fn is_zero(self) -> bool {
        self == Self::MIN
    }

    /// The next ID, or None at the maximum.
    pub fn incr(self) -> Option<StreamId> {
        if self.seq == u64::MAX {
            if self.ms == u64::MAX {
                None
            } else {
                Some(StreamId::new(self.ms + 1, 0))
            }
        } else {
            Some(StreamId::new(self.ms, self.seq + 1))
        }
    }

    /// The previous ID, or None at 0-0.
    pub fn decr(self) -> Option<StreamId> {
        if self.seq == 0 {
            if self.ms == 0 {
                None
            } else {
                Some(StreamId::new(self.ms - 1, u64::MAX))
            }
        } else {
            Some(StreamId::new(self.ms, self.seq - 1))
        }
    }

    /// `ms-seq` as bytes.
    pub fn to_bytes(self) -> Vec<u8> {
        let mut b = itoa::Buffer::new().format(self.ms).as_bytes().to_vec();
        b.push(b'-');
        b.extend_from_slice(itoa::Buffer::new().format(self.seq).as_bytes());
        b
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

const FLAG_DELETED: u8 = 1;
const FLAG_SAME: u8 = 2;

/// Node split limits (Redis's `stream-node-max-bytes` / `-entries`).
#[derive(Clone, Copy, Debug)]
pub struct NodeLimits {
    pub max_bytes: usize,
    pub max_entries: usize,
}

impl Default for NodeLimits {
    fn default() -> Self {
        NodeLimits {
            max_bytes: 4096,
            max_entries: 100,
        }
    }
}

/// Largest listpack Redis lets a stream node grow to (1 GB).
const LP_MAX: usize = 1 << 30;

#[derive(Clone)]
struct Node {
    master: Box<[Box<[u8]>]>,
    data: Vec<u8>,
    live: u32,
    deleted: u32,
    /// Size this node would have as a Redis listpack.
    lp_bytes: u32,
    /// ID of the last entry appended (live or deleted).
    last: StreamId,
    /// Whether that last entry is live (XADD's and XREAD's fast path).
    last_live: bool,
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(b: &[u8], pos: &mut usize) -> u64 {
    let mut v: u64 = 0;
    let mut shift = 0;
    while let Some(&byte) = b.get(*pos) {
        *pos += 1;
        v |= ((byte & 0x7f) as u64) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    v
}

fn get_slice<'a>(b: &'a [u8], pos: &mut usize) -> &'a [u8] {
    let n = get_varint(b, pos) as usize;
    let end = (*pos + n).min(b.len());
    let s = &b[*pos..end];
    *pos = end;
    s
}

/// Bytes a listpack element takes (encoding + backlen), as Redis's
/// listpack.c encodes a string or integer element.
fn lp_elem_bytes(s: &[u8]) -> usize {
    let enc = if let Some(v) = crate::value::parse_canonical_i64(s) {
        lp_int_enc(v)
    } else if s.len() < 64 {
        1 + s.len()
    } else if s.len() < 4096 {
        2 + s.len()
    } else {
        5 + s.len()
    };
    enc + lp_backlen(enc)
}

fn lp_int_enc(v: i64) -> usize {
    if (0..=127).contains(&v) {
        1
    } else if (-4096..=4095).contains(&v) {
        2
    } else if (-32768..=32767).contains(&v) {
        3
    } else if (-8388608..=8388607).contains(&v) {
        4
    } else if (-2147483648..=2147483647).contains(&v) {
        5
    } else {
        9
    }
}

fn lp_int_bytes(v: i64) -> usize {
    let e = lp_int_enc(v);
    e + lp_backlen(e)
}

fn lp_backlen(l: usize) -> usize {
    if l <= 127 {
        1
    } else if l < 16383 {
        2
    } else if l < 2097151 {
        3
    } else if l < 268435455 {
        4
    } else {
        5
    }
}

/// One decoded entry position inside a node.
struct Raw {
    id: StreamId,
    flags_at: usize,
    flags: u8,
    /// Start of the fields/values part (after the ID deltas).
    body: usize,
    end: usize,
}

impl Node {
    fn new(master_id: StreamId, fields: &[&[u8]]) -> Node {
        let master: Box<[Box<[u8]>]> = fields.iter().step_by(2).map(|f| (*f).into()).collect();
        // listpack header 6 + end 1; master entry: count, deleted, nfields,
        // fields..., 0.
        let mut lp = 7 + lp_int_bytes(1) + lp_int_bytes(0) + lp_int_bytes(master.len() as i64);
        for f in master.iter() {
            lp += lp_elem_bytes(f);
        }
        lp += lp_int_bytes(0);
        let _ = master_id;
        Node {
            master,
            data: Vec::new(),
            live: 0,
            deleted: 0,
            lp_bytes: lp.min(u32::MAX as usize) as u32,
            last: master_id,
            last_live: false,
        }
    }

    fn same_fields(&self, fields: &[&[u8]]) -> bool {
        fields.len() == self.master.len() * 2
            && fields
                .iter()
                .step_by(2)
                .zip(self.master.iter())
                .all(|(a, b)| *a == &b[..])
    }

    fn push(&mut self, master_id: StreamId, id: StreamId, fields: &[&[u8]]) -> usize {
        let at = self.data.len();
        let same = self.same_fields(fields);
        let dms = id.ms.wrapping_sub(master_id.ms);
        let dseq = id.seq.wrapping_sub(master_id.seq);
        self.data.push(if same { FLAG_SAME } else { 0 });
        put_varint(&mut self.data, dms);
        put_varint(&mut self.data, dseq);
        let mut lp = lp_int_bytes(if same { 2 } else { 0 })
            + lp_int_bytes(dms as i64)
            + lp_int_bytes(dseq as i64);
        let n = (fields.len() / 2) as i64;
        if same {
            for v in fields.iter().skip(1).step_by(2) {
                put_varint(&mut self.data, v.len() as u64);
                self.data.extend_from_slice(v);
                lp += lp_elem_bytes(v);
            }
            lp += lp_int_bytes(n + 3);
        } else {
            put_varint(&mut self.data, n as u64);
            lp += lp_int_bytes(n);
            for f in fields {
                put_varint(&mut self.data, f.len() as u64);
                self.data.extend_from_slice(f);
                lp += lp_elem_bytes(f);
            }
            lp += lp_int_bytes(2 * n + 4);
        }
        self.live += 1;
        self.last = id;
        self.last_live = true;
        self.lp_bytes = (self.lp_bytes as usize + lp).min(u32::MAX as usize) as u32;
        at
    }

    /// Walks every entry (deleted ones included) in order.
    fn walk(&self, master_id: StreamId, mut f: impl FnMut(Raw) -> bool) {
        let b = &self.data;
        let mut pos = 0;
        while pos < b.len() {
            let flags_at = pos;
            let flags = b[pos];
            pos += 1;
            let dms = get_varint(b, &mut pos);
            let dseq = get_varint(b, &mut pos);
            let id = StreamId::new(
                master_id.ms.wrapping_add(dms),
                master_id.seq.wrapping_add(dseq),
            );
            let body = pos;
            let nvals = if flags & FLAG_SAME != 0 {
                self.master.len() as u64
            } else {
                get_varint(b, &mut pos) * 2
            };
            for _ in 0..nvals {
                let n = get_varint(b, &mut pos) as usize;
                pos = (pos + n).min(b.len());
            }
            if !f(Raw {
                id,
                flags_at,
                flags,
                body,
                end: pos,
            }) {
                break;
            }
        }
    }

    /// Field/value pairs of the entry at `r`, flattened.
    fn fields<'a>(&'a self, r: &Raw, out: &mut Vec<&'a [u8]>) {
        out.clear();
        let b = &self.data[..r.end];
        let mut pos = r.body;
        if r.flags & FLAG_SAME != 0 {
            for m in self.master.iter() {
                out.push(m);
                out.push(get_slice(b, &mut pos));
            }
        } else {
            let n = get_varint(b, &mut pos);
            for _ in 0..n * 2 {
                out.push(get_slice(b, &mut pos));
            }
        }
    }

    fn heap_size(&self) -> usize {
        self.data.capacity()
            + self.master.len() * 16
            + self.master.iter().map(|m| m.len()).sum::<usize>()
            + 64
    }
}

/// A pending entry in a group's PEL.
#[derive(Clone, Debug)]
pub struct Nack {
    pub delivery_time: i64,
    pub delivery_count: u64,
    /// The owner; shares its name with the group's consumer map.
    pub consumer: Arc<[u8]>,
}

#[derive(Clone, Debug, Default)]
pub struct Consumer {
    pub seen_time: i64,
    /// Last successful read/claim, -1 when never.
    pub active_time: i64,
    pub pel: BTreeSet<StreamId>,
}

impl Consumer {
    /// A consumer first seen at `now` that has not read anything yet.
    pub fn new(now: i64) -> Consumer {
        Consumer {
            seen_time: now,
            active_time: -1,
            pel: BTreeSet::new(),
        }
    }
}

/// A group's pending entries by ID.
pub type PelMap = HashMap<StreamId, Nack, foldhash::fast::RandomState>;

#[derive(Clone, Debug)]
pub struct Group {
    pub last_id: StreamId,
    /// Logical read counter; None = invalid (Redis's SCG_INVALID_ENTRIES_READ).
    pub entries_read: Option<u64>,
    /// Every pending entry by ID, unordered: XACK and XCLAIM probe it at
    /// random, and a hash probe touches two cache lines where an ordered
    /// tree of every pending ID touches one node per level. The order is
    /// the consumers' PELs merged ([`Group::pel_range`]): each pending
    /// entry is in exactly one consumer's PEL.
    pub pel: PelMap,
    pub consumers: BTreeMap<Arc<[u8]>, Consumer>,
}

impl Group {
    pub fn new(last_id: StreamId, entries_read: Option<u64>) -> Group {
        Group {
            last_id,
            entries_read,
            pel: PelMap::default(),
            consumers: BTreeMap::new(),
        }
    }

    /// Pending entries with IDs `>= start` in ID order: the consumers'
    /// PELs merged.
    pub fn pel_range(&self, start: StreamId) -> impl Iterator<Item = (StreamId, &Nack)> + '_ {
        let mut heads: Vec<_> = self
            .consumers
            .values()
            .map(|c| c.pel.range(start..))
            .collect();
        let mut heap = BinaryHeap::with_capacity(heads.len());
        for (i, h) in heads.iter_mut().enumerate() {
            if let Some(id) = h.next() {
                heap.push(Reverse((*id, i)));
            }
        }
        std::iter::from_fn(move || loop {
            let Reverse((id, i)) = heap.pop()?;
            if let Some(next) = heads[i].next() {
                heap.push(Reverse((*next, i)));
            }
            if let Some(n) = self.pel.get(&id) {
                return Some((id, n));
            }
        })
    }

    /// The smallest pending ID.
    pub fn pel_first(&self) -> Option<StreamId> {
        self.consumers
            .values()
            .filter_map(|c| c.pel.first())
            .min()
            .copied()
    }

    /// The largest pending ID.
    pub fn pel_last(&self) -> Option<StreamId> {
        self.consumers
            .values()
            .filter_map(|c| c.pel.last())
            .max()
            .copied()
    }

    /// Marks consumer `name` seen at `now`, creating it if missing; true
    /// when it was created.
    pub fn touch_consumer(&mut self, name: &[u8], now: i64) -> bool {
        match self.consumers.get_mut(name) {
            Some(c) => {
                c.seen_time = now;
                false
            }
            None => {
                self.consumers.insert(name.into(), Consumer::new(now));
                true
            }
        }
    }

    /// Gives pending entry `id` to consumer `name` (XCLAIM, XAUTOCLAIM),
    /// which must exist: moves it between the consumers' PELs, sets its
    /// delivery time, and sets its delivery count to `count` or, without
    /// one, adds 1 when `bump`. Returns (delivery time, delivery count);
    /// None when `id` is not pending.
    pub fn claim(
        &mut self,
        id: StreamId,
        name: &[u8],
        now: i64,
        delivery_time: i64,
        count: Option<u64>,
        bump: bool,
    ) -> Option<(i64, u64)> {
        let owner = match self.consumers.get_key_value(name) {
            Some((k, _)) => k.clone(),
            None => name.into(),
        };
        let nack = self.pel.get_mut(&id)?;
        let old = std::mem::replace(&mut nack.consumer, owner);
        nack.delivery_time = delivery_time;
        match count {
            Some(n) => nack.delivery_count = n,
            None if bump => nack.delivery_count = nack.delivery_count.wrapping_add(1),
            None => {}
        }
        let got = (nack.delivery_time, nack.delivery_count);
        if &*old != name {
            if let Some(oc) = self.consumers.get_mut(&old) {
                oc.pel.remove(&id);
            }
        }
        if let Some(c) = self.consumers.get_mut(name) {
            c.pel.insert(id);
            c.active_time = now;
        }
        Some(got)
    }

    /// Delivers entry `id` to consumer `name` at `now` (a read of new
    /// entries, Redis's `streamReplyWithRange` with a group): a fresh PEL
    /// entry with delivery count 1, or, when `id` is already pending (the
    /// group's ID was set back), the entry moved to `name` and reset.
    /// Creates the consumer if missing and marks it active.
    pub fn deliver(&mut self, id: StreamId, name: &[u8], now: i64) {
        let name = match self.consumers.get_key_value(name) {
            Some((k, _)) => k.clone(),
            None => {
                let k: Arc<[u8]> = name.into();
                self.consumers.insert(k.clone(), Consumer::new(now));
                k
            }
        };
        let c = self.consumers.get_mut(&name).expect("present");
        c.pel.insert(id);
        c.active_time = now;
        match self.pel.entry(id) {
            std::collections::hash_map::Entry::Occupied(mut o) => {
                let nack = o.get_mut();
                nack.delivery_time = now;
                nack.delivery_count = 1;
                if nack.consumer != name {
                    let old = std::mem::replace(&mut nack.consumer, name);
                    if let Some(oc) = self.consumers.get_mut(&old) {
                        oc.pel.remove(&id);
                    }
                }
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(Nack {
                    delivery_time: now,
                    delivery_count: 1,
                    consumer: name,
                });
            }
        }
    }

    /// Drops a pending entry from the group PEL and its owner's PEL.
    pub fn ack(&mut self, id: StreamId) -> bool {
        match self.pel.remove(&id) {
            Some(n) => {
                if let Some(c) = self.consumers.get_mut(&n.consumer) {
                    c.pel.remove(&id);
                }
                true
            }
            None => false,
        }
    }
}

/// What to trim: the strategy and its bound.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Trim {
    MaxLen(u64),
    MinId(StreamId),
}

#[derive(Clone, Default)]
pub struct Stream {
    nodes: BTreeMap<StreamId, Node>,
    length: u64,
    pub last_id: StreamId,
    pub first_id: StreamId,
    pub max_deleted: StreamId,
    pub entries_added: u64,
    pub groups: BTreeMap<Box<[u8]>, Group>,
}

impl Stream {
    pub fn new() -> Stream {
        Stream::default()
    }

    pub fn len(&self) -> u64 {
        self.length
    }

    /// Sets the recorded length (a loaded file's, which Redis trusts).
    pub fn set_len(&mut self, n: u64) {
        self.length = n;
    }

    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// Number of nodes (XINFO STREAM `radix-tree-nodes` is derived from it).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Master IDs of the nodes, ascending (the radix tree keys in Redis).
    pub fn node_ids(&self) -> impl Iterator<Item = StreamId> + '_ {
        self.nodes.keys().copied()
    }

    /// Appends an entry; `id` must be greater than `last_id` (checked by
    /// the caller). `fields` are flattened field/value pairs.
    pub fn append(&mut self, id: StreamId, fields: &[&[u8]], lim: NodeLimits) {
        let tot: usize = fields.iter().map(|f| f.len()).sum();
        let max_bytes = if lim.max_bytes == 0 || lim.max_bytes > LP_MAX {
            LP_MAX
        } else {
            lim.max_bytes
        };
        let need_new = match self.nodes.last_key_value() {
            None => true,
            Some((_, n)) => {
                n.lp_bytes as usize + tot >= max_bytes
                    || (lim.max_entries > 0 && (n.live + n.deleted) as usize >= lim.max_entries)
            }
        };
        if need_new {
            // The closed node will not grow again: give back its slack,
            // as Redis's lpShrinkToFit does.
            if let Some(mut last) = self.nodes.last_entry() {
                last.get_mut().data.shrink_to_fit();
            }
            self.nodes.insert(id, Node::new(id, fields));
        }
        let mut last = self.nodes.last_entry().expect("node present");
        let mid = *last.key();
        last.get_mut().push(mid, id, fields);
        if self.length == 0 {
            self.first_id = id;
        }
        // Wrapping, as Redis's counters: a loaded file may claim any value.
        self.length = self.length.wrapping_add(1);
        self.entries_added = self.entries_added.wrapping_add(1);
        self.last_id = id;
    }

    /// Loads one entry into a given node layout (from a file): starts a
    /// new node when `new_node`, and stores it as a tombstone when
    /// `deleted`. Counters (`entries_added`, `first_id`...) are the
    /// caller's to set afterwards; `len` counts live entries.
    pub fn load_entry(&mut self, id: StreamId, fields: &[&[u8]], new_node: bool, deleted: bool) {
        if new_node || self.nodes.is_empty() {
            self.nodes.insert(id, Node::new(id, fields));
        }
        let mut last = self.nodes.last_entry().expect("node present");
        let mid = *last.key();
        let node = last.get_mut();
        let at = node.push(mid, id, fields);
        if deleted {
            node.data[at] |= FLAG_DELETED;
            node.live -= 1;
            node.deleted += 1;
            node.last_live = false;
        } else {
            self.length = self.length.wrapping_add(1);
        }
        self.last_id = self.last_id.max(id);
    }

    /// Drops nodes left without live entries (only possible after a load
    /// of an inconsistent layout).
    pub fn drop_empty_nodes(&mut self) {
        self.nodes.retain(|_, n| n.live > 0);
    }

    /// The node layout: (master ID, entries including deleted ones).
    pub fn layout(&self) -> Vec<(StreamId, u64)> {
        self.nodes
            .iter()
            .map(|(k, n)| (*k, (n.live + n.deleted) as u64))
            .collect()
    }

    /// Every stored entry in ID order, tombstones included:
    /// `f(id, fields, deleted)`.
    pub fn for_each_stored(&self, mut f: impl FnMut(StreamId, &[&[u8]], bool)) {
        let mut buf = Vec::new();
        for (mid, node) in &self.nodes {
            node.walk(*mid, |r| {
                node.fields(&r, &mut buf);
                f(r.id, &buf, r.flags & FLAG_DELETED != 0);
                true
            });
        }
    }

    /// Where a forward walk from `id` begins, as Redis's iterator seeks:
    /// the last node whose master ID is <= `id`, else the first node (a
    /// bound below every node).
    fn walk_start(&self, id: StreamId) -> StreamId {
        self.nodes.range(..=id).next_back().map_or(id, |(k, _)| *k)
    }

    /// Calls `f(id, fields)` for live entries in `[start, end]`, ascending
    /// (or descending when `rev`), until it returns false.
    ///
    /// Entries are visited as Redis's stream iterator visits them, which
    /// matters once XSETID has lowered the last ID below a deleted entry
    /// and XADD has appended lower IDs after it: going forward, deleted
    /// entries and entries below `start` are skipped and the first live
    /// entry above `end` ends the walk; going backward, deleted entries and
    /// entries above `end` are skipped and the first live entry below
    /// `start` ends it. A deleted entry never ends it.
    pub fn range(
        &self,
        start: StreamId,
        end: StreamId,
        rev: bool,
        mut f: impl FnMut(StreamId, &[&[u8]]) -> bool,
    ) {
        if start > end {
            return;
        }
        let mut buf = Vec::new();
        if !rev {
            for (mid, node) in self.nodes.range(self.walk_start(start)..) {
                // A node's live entries are all <= its last appended entry.
                if node.last < start {
                    continue;
                }
                let mut go = true;
                node.walk(*mid, |r| {
                    if r.flags & FLAG_DELETED != 0 || r.id < start {
                        return true;
                    }
                    if r.id > end {
                        go = false;
                        return false;
                    }
                    node.fields(&r, &mut buf);
                    go = f(r.id, &buf);
                    go
                });
                if !go {
                    return;
                }
            }
        } else {
            // From the last node whose master is <= end (else the last).
            let upto = self
                .nodes
                .range(..=end)
                .next_back()
                .map(|(k, _)| *k)
                .or_else(|| self.nodes.last_key_value().map(|(k, _)| *k));
            let Some(upto) = upto else { return };
            let mut raws = Vec::new();
            for (mid, node) in self.nodes.range(..=upto).rev() {
                raws.clear();
                node.walk(*mid, |r| {
                    if r.flags & FLAG_DELETED == 0 {
                        raws.push(r);
                    }
                    true
                });
                for r in raws.iter().rev() {
                    if r.id > end {
                        continue;
                    }
                    if r.id < start {
                        return;
                    }
                    node.fields(r, &mut buf);
                    if !f(r.id, &buf) {
                        return;
                    }
                }
            }
        }
    }

    /// Live entries in `[start, end]` as owned data (at most `count`).
    pub fn collect(
        &self,
        start: StreamId,
        end: StreamId,
        rev: bool,
        count: Option<usize>,
    ) -> Vec<(StreamId, Vec<Vec<u8>>)> {
        let mut out = Vec::new();
        if count == Some(0) {
            return out;
        }
        self.range(start, end, rev, |id, f| {
            out.push((id, f.iter().map(|x| x.to_vec()).collect()));
            count.is_none_or(|c| out.len() < c)
        });
        out
    }

    /// The fields of entry `id` if it is live.
    pub fn get(&self, id: StreamId) -> Option<Vec<Vec<u8>>> {
        self.collect(id, id, false, Some(1)).pop().map(|(_, f)| f)
    }

    pub fn contains(&self, id: StreamId) -> bool {
        let mut found = false;
        self.range(id, id, false, |_, _| {
            found = true;
            false
        });
        found
    }

    /// First (or last) live entry ID.
    pub fn edge(&self, first: bool) -> Option<StreamId> {
        if !first {
            if let Some((_, n)) = self.nodes.last_key_value() {
                if n.last_live {
                    return Some(n.last);
                }
            }
        }
        let mut r = None;
        self.range(StreamId::MIN, StreamId::MAX, !first, |id, _| {
            r = Some(id);
            false
        });
        r
    }

    /// Marks entry `id` deleted. Does not touch `max_deleted` (XDEL does).
    pub fn delete(&mut self, id: StreamId) -> bool {
        // Found as Redis's `streamDeleteItem` finds it, with a range walk
        // from the last node whose master is <= id (else the first):
        // deleted entries are passed over (after XSETID lowered the last
        // ID, live entries, even one with this very ID, can follow a
        // higher tombstone, in this node or the next), and the first live
        // entry above `id` ends the search.
        let mut found = None;
        for (mid, node) in self.nodes.range(self.walk_start(id)..) {
            let mut stop = false;
            node.walk(*mid, |r| {
                if r.flags & FLAG_DELETED != 0 || r.id < id {
                    return true;
                }
                if r.id == id {
                    found = Some((*mid, r.flags_at));
                }
                stop = true;
                false
            });
            if stop {
                break;
            }
        }
        let Some((mid, at)) = found else { return false };
        let node = self.nodes.get_mut(&mid).expect("just found");
        if id == node.last {
            node.last_live = false;
        }
        node.data[at] |= FLAG_DELETED;
        node.live -= 1;
        node.deleted += 1;
        if node.live == 0 {
            self.nodes.remove(&mid);
        }
        self.length = self.length.saturating_sub(1);
        if self.length == 0 {
            self.first_id = StreamId::MIN;
        } else if id == self.first_id {
            self.first_id = self.edge(true).unwrap_or_default();
        }
        true
    }

    /// Trims as Redis's `streamTrim`: whole nodes from the head, then (not
    /// `approx`) entries of the next node. `limit` 0 = unlimited. Returns
    /// the number of entries removed.
    pub fn trim(&mut self, how: Trim, approx: bool, limit: u64) -> u64 {
        let mut deleted = 0u64;
        while let Some((&mid, node)) = self.nodes.first_key_value() {
            if let Trim::MaxLen(m) = how {
                if self.length <= m {
                    break;
                }
            }
            let entries = node.live as u64;
            if limit > 0 && deleted + entries > limit {
                break;
            }
            let remove = match how {
                Trim::MaxLen(m) => self.length.saturating_sub(entries) >= m,
                Trim::MinId(min) => node.last < min,
            };
            if remove {
                self.nodes.remove(&mid);
                self.length = self.length.saturating_sub(entries);
                deleted += entries;
                continue;
            }
            if approx {
                break;
            }
            let node = self.nodes.get_mut(&mid).expect("present");
            let mut marks = Vec::new();
            let mut length = self.length;
            node.walk(mid, |r| {
                let stop = match how {
                    Trim::MaxLen(m) => length <= m,
                    Trim::MinId(min) => r.id >= min,
                };
                if stop {
                    return false;
                }
                if r.flags & FLAG_DELETED == 0 {
                    marks.push((r.flags_at, r.id));
                    length = length.saturating_sub(1);
                }
                true
            });
            for (at, id) in &marks {
                node.data[*at] |= FLAG_DELETED;
                if *id == node.last {
                    node.last_live = false;
                }
            }
            let n = marks.len() as u32;
            node.live -= n;
            node.deleted += n;
            if node.live == 0 {
                // Reached when the in-node trim stopped at a deleted entry
                // at or above MINID after every live one. Redis keeps such
                // a node (XINFO's radix-tree-keys counts it, and later node
                // splits differ); Basalt drops it, since its lookups assume
                // no node without live entries. Only the layout differs,
                // unless XSETID later lowers the last ID below that
                // tombstone (then Redis may return entries out of order).
                self.nodes.remove(&mid);
            }
            self.length = length;
            deleted += n as u64;
            break;
        }
        self.first_id = if self.length == 0 {
            StreamId::MIN
        } else {
            self.edge(true).unwrap_or_default()
        };
        deleted
    }

    /// Whether the range `[start, end]` may hold a deleted entry (Redis's
    /// `streamRangeHasTombstones`).
    pub fn range_has_tombstones(&self, start: StreamId, end: StreamId) -> bool {
        if self.length == 0 || self.max_deleted.is_zero() {
            return false;
        }
        if self.first_id > self.max_deleted {
            return false;
        }
        start <= self.max_deleted && self.max_deleted <= end
    }

    /// Redis's `streamEstimateDistanceFromFirstEverEntry`: the logical
    /// read counter of `id`, None when it cannot be known.
    pub fn estimate_distance(&self, id: StreamId) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if self.length == 0 && id <= self.last_id {
            return Some(self.entries_added);
        }
        if id == self.last_id {
            return Some(self.entries_added);
        }
        if id > self.last_id {
            return None;
        }
        if self.max_deleted.is_zero() || self.max_deleted < self.first_id {
            if id < self.first_id {
                return Some(self.entries_added.wrapping_sub(self.length));
            }
            if id == self.first_id {
                return Some(self.entries_added.wrapping_sub(self.length).wrapping_add(1));
            }
        }
        None
    }

    /// The lag of `g` (XINFO GROUPS), None when unknown.
    pub fn group_lag(&self, g: &Group) -> Option<i64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if let Some(r) = g.entries_read {
            if !self.range_has_tombstones(g.last_id, StreamId::MAX) {
                return Some((self.entries_added as i64).wrapping_sub(r as i64));
            }
        }
        self.estimate_distance(g.last_id)
            .map(|r| (self.entries_added as i64).wrapping_sub(r as i64))
    }

    /// Nodes and their listpack-equivalent bytes (XINFO FULL, MEMORY).
    pub fn lp_bytes_total(&self) -> usize {
        self.nodes.values().map(|n| n.lp_bytes as usize).sum()
    }

    pub fn heap_size(&self) -> usize {
        let mut n = 64 + self.nodes.values().map(Node::heap_size).sum::<usize>();
        for (name, g) in &self.groups {
            n += 96 + name.len() + g.pel.capacity() * (std::mem::size_of::<(StreamId, Nack)>() + 1);
            for (cn, c) in &g.consumers {
                n += 96 + cn.len() + c.pel.len() * 40;
            }
        }
        n
    }

    pub fn deep_clone(&self) -> Stream {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ms: u64, seq: u64) -> StreamId {
        StreamId::new(ms, seq)
    }

    #[test]
    fn append_range_delete_trim() {
        let mut s = Stream::new();
        let lim = NodeLimits::default();
        for i in 1..=250u64 {
            let v = i.to_string();
            if i % 7 == 0 {
                s.append(id(i, 0), &[b"other", v.as_bytes()], lim);
            } else {
                s.append(id(i, 0), &[b"f", v.as_bytes(), b"g", b"x"], lim);
            }
        }
        assert_eq!(s.len(), 250);
        assert_eq!(s.node_count(), 3);
        let all = s.collect(StreamId::MIN, StreamId::MAX, false, None);
        assert_eq!(all.len(), 250);
        assert_eq!(all[6].1, vec![b"other".to_vec(), b"7".to_vec()]);
        assert_eq!(
            all[0].1,
            vec![b"f".to_vec(), b"1".to_vec(), b"g".to_vec(), b"x".to_vec()]
        );
        let rev = s.collect(id(5, 0), id(150, 0), true, Some(3));
        assert_eq!(
            rev.iter().map(|e| e.0).collect::<Vec<_>>(),
            vec![id(150, 0), id(149, 0), id(148, 0)]
        );
        assert!(s.delete(id(1, 0)));
        assert!(!s.delete(id(1, 0)));
        assert_eq!(s.first_id, id(2, 0));
        assert_eq!(s.trim(Trim::MaxLen(150), true, 0), 99);
        assert_eq!(s.len(), 150);
        assert_eq!(s.trim(Trim::MaxLen(140), false, 0), 10);
        assert_eq!(s.first_id, id(111, 0));
        assert_eq!(s.trim(Trim::MinId(id(200, 0)), false, 0), 89);
        assert_eq!(s.first_id, id(200, 0));
        assert_eq!(s.edge(false), Some(id(250, 0)));
    }

    #[test]
    fn group_pel_order_is_the_consumers_merged() {
        let mut g = Group::new(StreamId::MIN, Some(0));
        for i in 1..=30u64 {
            let who: &[u8] = match i % 3 {
                0 => b"a",
                1 => b"b",
                _ => b"c",
            };
            g.deliver(id(i, 0), who, i as i64);
        }
        assert_eq!(g.pel.len(), 30);
        assert!(g.ack(id(4, 0)));
        assert!(!g.ack(id(4, 0)));
        g.touch_consumer(b"d", 99);
        assert_eq!(g.claim(id(5, 0), b"d", 99, 99, None, true), Some((99, 2)));
        // Delivered again (the group ID set back): moves to the reader.
        g.deliver(id(6, 0), b"b", 100);
        let all: Vec<StreamId> = g.pel_range(StreamId::MIN).map(|(k, _)| k).collect();
        let want: Vec<StreamId> = (1..=30).filter(|i| *i != 4).map(|i| id(i, 0)).collect();
        assert_eq!(all, want);
        let from: Vec<u64> = g.pel_range(id(25, 0)).map(|(k, _)| k.ms).collect();
        assert_eq!(from, vec![25, 26, 27, 28, 29, 30]);
        assert_eq!(g.pel_first(), Some(id(1, 0)));
        assert_eq!(g.pel_last(), Some(id(30, 0)));
        assert!(g.consumers[&b"d"[..]].pel.contains(&id(5, 0)));
        assert!(!g.consumers[&b"c"[..]].pel.contains(&id(5, 0)));
        assert!(g.consumers[&b"b"[..]].pel.contains(&id(6, 0)));
        assert!(!g.consumers[&b"a"[..]].pel.contains(&id(6, 0)));
        assert_eq!(&*g.pel[&id(6, 0)].consumer, b"b");
        let owned: usize = g.consumers.values().map(|c| c.pel.len()).sum();
        assert_eq!(owned, g.pel.len());
    }
}
