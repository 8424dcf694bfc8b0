//! Argument parsing helpers shared by the families.

use super::CmdError;
use crate::num;

pub fn int(b: &[u8]) -> Result<i64, CmdError> {
    num::parse_i64(b).ok_or(CmdError::NotInteger)
}

/// An integer in C `int` range, as Redis's `getIntFromObjectOrReply`
/// with no custom message.
pub fn int32(b: &[u8]) -> Result<i64, CmdError> {
    let v = int(b)?;
    if v < i32::MIN as i64 || v > i32::MAX as i64 {
        return Err(CmdError::msg(
            "ERR value is out of range, value must between -2147483648 and 2147483647",
        ));
    }
    Ok(v)
}

pub fn float(b: &[u8]) -> Result<f64, CmdError> {
    num::parse_f64(b).ok_or(CmdError::NotFloat)
}

/// A non-negative integer; negative or junk gives `err`.
pub fn uint_or(b: &[u8], err: CmdError) -> Result<u64, CmdError> {
    match num::parse_i64(b) {
        Some(v) if v >= 0 => Ok(v as u64),
        _ => Err(err),
    }
}

pub fn eq(a: &[u8], lit: &str) -> bool {
    a.eq_ignore_ascii_case(lit.as_bytes())
}

pub fn upper(a: &[u8]) -> String {
    String::from_utf8_lossy(a).to_ascii_uppercase()
}
