//! Conversion between the rdb crate's neutral values and the keyspace's.
//!
//! Used by RESTORE / DUMP and by importing a Redis `dump.rdb` at first
//! start. A value the keyspace cannot hold yet (streams, modules) is a
//! clear error naming what it is, never a silent drop.

use basalt_rdb::Value as RdbValue;
use basalt_storage::{Limits, Value};

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
            let mut z = basalt_storage::zset::ZSet::new();
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
    }
}
