//! Conversion between the rdb crate's neutral values and the keyspace's.
//!
//! Used by RESTORE / DUMP and by importing a Redis `dump.rdb` at first
//! start. A value type the keyspace cannot hold yet is a clear error
//! naming the type, never a silent drop.

use basalt_rdb::Value as RdbValue;
use basalt_storage::Value;

/// Keyspace value from an RDB value.
pub fn from_rdb(v: &RdbValue) -> Result<Value, String> {
    match v {
        RdbValue::String(b) => Ok(Value::from_bytes(b)),
        other => Err(format!("values of type '{}' are not supported by this Basalt build yet", other.type_name())),
    }
}

/// RDB value from a keyspace value.
pub fn to_rdb(v: &Value) -> RdbValue {
    match v {
        Value::Int(i) => RdbValue::String(itoa::Buffer::new().format(*i).as_bytes().to_vec()),
        Value::Str(b) | Value::Raw(b) => RdbValue::String(b.to_vec()),
    }
}
