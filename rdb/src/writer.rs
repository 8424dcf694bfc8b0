//! The file writer: header, AUX fields, databases, keys, functions, EOF and
//! CRC64, for a chosen [`Target`].

use crate::crc64::Crc64;
use crate::encode::{encode_value, write_length, write_string, EncodeOptions, Target};
use crate::error::{Error, Result};
use crate::value::{Entry, Function};
use std::io::Write;

/// Writes a dump to any `Write`.
pub struct Writer<W: Write> {
    w: W,
    crc: Crc64,
    opts: EncodeOptions,
    db: Option<u64>,
    buf: Vec<u8>,
}

impl<W: Write> Writer<W> {
    /// Write the header for `opts.target`.
    pub fn new(w: W, opts: EncodeOptions) -> Result<Self> {
        let mut wr = Writer {
            w,
            crc: Crc64::new(),
            opts,
            db: None,
            buf: Vec::with_capacity(4096),
        };
        let header = opts.target.format().header();
        wr.emit(&header)?;
        Ok(wr)
    }

    fn emit(&mut self, bytes: &[u8]) -> Result<()> {
        self.crc.update(bytes);
        self.w.write_all(bytes)?;
        Ok(())
    }

    fn flush_buf(&mut self) -> Result<()> {
        let buf = std::mem::take(&mut self.buf);
        let r = self.emit(&buf);
        self.buf = buf;
        self.buf.clear();
        r
    }

    /// Write an AUX field.
    pub fn aux(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.buf.push(250);
        write_string(&mut self.buf, key, false);
        write_string(&mut self.buf, value, false);
        self.flush_buf()
    }

    /// Write the AUX fields Redis writes (`redis-ver`, `redis-bits`, `ctime`,
    /// `used-mem`, `aof-base`), with `redis_ver` as version string.
    pub fn standard_aux(&mut self, redis_ver: &str, ctime_s: u64) -> Result<()> {
        self.aux(b"redis-ver", redis_ver.as_bytes())?;
        self.aux(b"redis-bits", b"64")?;
        self.aux(b"ctime", ctime_s.to_string().as_bytes())?;
        self.aux(b"used-mem", b"0")?;
        self.aux(b"aof-base", b"0")
    }

    /// Start database `db`, optionally with a RESIZEDB hint.
    pub fn select_db(&mut self, db: u64, resize: Option<(u64, u64)>) -> Result<()> {
        self.buf.push(254);
        write_length(&mut self.buf, db);
        if let Some((size, expires)) = resize {
            self.buf.push(251);
            write_length(&mut self.buf, size);
            write_length(&mut self.buf, expires);
        }
        self.db = Some(db);
        self.flush_buf()
    }

    /// Write a key (selecting its database first if needed).
    pub fn entry(&mut self, e: &Entry) -> Result<()> {
        if self.db != Some(e.db) {
            self.select_db(e.db, None)?;
        }
        let mut body = std::mem::take(&mut self.buf);
        body.clear();
        if let Some(ms) = e.expire_ms {
            body.push(252);
            body.extend_from_slice(&ms.to_le_bytes());
        }
        if let Some(idle) = e.lru_idle {
            body.push(248);
            write_length(&mut body, idle);
        }
        if let Some(freq) = e.lfu_freq {
            body.push(249);
            body.push(freq);
        }
        let type_at = body.len();
        body.push(0);
        write_string(&mut body, &e.key, self.opts.compress);
        let r = encode_value(&mut body, &e.value, &self.opts);
        match r {
            Ok(t) => {
                if let Some(b) = body.get_mut(type_at) {
                    *b = t;
                }
                self.buf = body;
                self.flush_buf()
            }
            Err(err) => {
                body.clear();
                self.buf = body;
                Err(err)
            }
        }
    }

    /// Write a function library (RDB 10+).
    pub fn function(&mut self, f: &Function) -> Result<()> {
        if self.opts.target == Target::Redis9 {
            return Err(Error::Unrepresentable {
                target: self.opts.target.format().to_string(),
                what: "function libraries (need RDB 10+)".into(),
            });
        }
        if !f.code_names_itself() {
            return Err(Error::Unrepresentable {
                target: self.opts.target.format().to_string(),
                what: format!(
                    "function library {:?} (engine {:?}): its code's '#!<engine> name=<library>' line does not name it, so it would not load",
                    String::from_utf8_lossy(&f.library),
                    String::from_utf8_lossy(&f.engine)
                ),
            });
        }
        self.buf.push(245);
        write_string(&mut self.buf, &f.code, self.opts.compress);
        self.flush_buf()
    }

    /// Write EOF and the CRC64; returns the inner writer (flushed).
    pub fn finish(mut self) -> Result<W> {
        self.emit(&[255])?;
        let crc = self.crc.value();
        self.w.write_all(&crc.to_le_bytes())?;
        self.w.flush()?;
        Ok(self.w)
    }
}
