//! Output written on a second thread.
//!
//! Encoding JSON or RESP is one core's work; the `write` system calls
//! that copy it into the page cache are about as much again for a real
//! file. Handing full 1 MiB buffers to a writer thread lets the two
//! overlap. At most [`IN_FLIGHT`] buffers wait, so memory stays bounded
//! whatever the output's speed.

use std::io::{self, Write};
use std::sync::mpsc::{channel, sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

const BUF: usize = 1 << 20;
const IN_FLIGHT: usize = 2;

enum Msg {
    Data(Vec<u8>),
    /// Flush the sink and answer on the ack channel.
    Flush,
}

/// What `ThreadedWriter::take_answers` waits for.
#[derive(Clone, Copy, PartialEq)]
enum Want {
    /// Nothing: take what is there.
    Nothing,
    /// The answer to a flush.
    Flush,
    /// A buffer to reuse.
    Buffer,
}

pub struct ThreadedWriter {
    buf: Vec<u8>,
    tx: Option<SyncSender<Msg>>,
    /// Emptied buffers coming back, and flush answers.
    back: Receiver<io::Result<Option<Vec<u8>>>>,
    thread: Option<JoinHandle<()>>,
    /// Buffers the thread has given back, for reuse: a fresh 1 MiB buffer
    /// per send would cost page faults (the kernel zeroing new pages was
    /// 15% of a `dump --format jsonl` profile).
    spare: Vec<Vec<u8>>,
    /// Buffers allocated so far (at most `IN_FLIGHT + 1`).
    allocated: usize,
    /// The writer thread failed: every later call reports it.
    failed: Option<(io::ErrorKind, String)>,
}

impl ThreadedWriter {
    pub fn new<W: Write + Send + 'static>(mut sink: W) -> ThreadedWriter {
        let (tx, rx) = sync_channel::<Msg>(IN_FLIGHT);
        // Unbounded, so the thread never waits on it; it holds at most the
        // few buffers in flight, since every send first takes what is there.
        let (back_tx, back) = channel();
        let thread = std::thread::Builder::new()
            .name("output".into())
            .spawn(move || {
                for msg in rx {
                    let r = match msg {
                        Msg::Data(mut b) => sink.write_all(&b).map(|()| {
                            b.clear();
                            Some(b)
                        }),
                        Msg::Flush => sink.flush().map(|()| None),
                    };
                    let stop = r.is_err();
                    if back_tx.send(r).is_err() || stop {
                        return;
                    }
                }
                let _ = sink.flush();
            })
            .ok();
        let failed = thread.is_none().then(|| {
            (
                io::ErrorKind::Other,
                "cannot start the output thread".to_string(),
            )
        });
        ThreadedWriter {
            buf: Vec::with_capacity(BUF),
            tx: thread.is_some().then_some(tx),
            back,
            thread,
            spare: Vec::new(),
            allocated: 1,
            failed,
        }
    }

    fn error(&self) -> io::Error {
        match &self.failed {
            Some((k, m)) => io::Error::new(*k, m.clone()),
            None => io::Error::other("output thread gone"),
        }
    }

    /// Takes the thread's answers (returned buffers go to `spare`): those
    /// already there, or until `want` has arrived. The first error sticks.
    fn take_answers(&mut self, want: Want) -> io::Result<()> {
        loop {
            if want == Want::Buffer && !self.spare.is_empty() {
                return Ok(());
            }
            let r = if want == Want::Nothing {
                match self.back.try_recv() {
                    Ok(r) => r,
                    Err(_) => return Ok(()),
                }
            } else {
                match self.back.recv() {
                    Ok(r) => r,
                    Err(_) => return Err(self.error()),
                }
            };
            match r {
                Ok(Some(b)) => self.spare.push(b),
                Ok(None) if want == Want::Flush => return Ok(()),
                Ok(None) => {}
                Err(e) => {
                    self.failed = Some((e.kind(), e.to_string()));
                    return Err(e);
                }
            }
        }
    }

    fn send_buf(&mut self) -> io::Result<()> {
        if self.failed.is_some() {
            return Err(self.error());
        }
        if self.buf.is_empty() {
            return Ok(());
        }
        self.take_answers(Want::Nothing)?;
        let full = std::mem::take(&mut self.buf);
        let tx = self.tx.as_ref().ok_or_else(|| self.error())?;
        if tx.send(Msg::Data(full)).is_err() {
            // The thread stopped on an error: fetch it.
            let _ = self.take_answers(Want::Nothing);
            return Err(self.error());
        }
        self.buf = match self.spare.pop() {
            Some(b) => b,
            None if self.allocated <= IN_FLIGHT => {
                self.allocated += 1;
                Vec::with_capacity(BUF)
            }
            None => {
                self.take_answers(Want::Buffer)?;
                self.spare.pop().unwrap_or_default()
            }
        };
        Ok(())
    }
}

impl ThreadedWriter {
    /// Hands over a whole buffer the caller filled (the bytes already in
    /// this writer go first) and returns an empty one to fill next, so a
    /// caller that formats into its own `Vec` skips the copy into ours:
    /// for `dump --format jsonl` that copy was gigabytes of `memcpy`.
    pub fn exchange(&mut self, mut full: Vec<u8>) -> io::Result<Vec<u8>> {
        if self.failed.is_some() {
            return Err(self.error());
        }
        if !self.buf.is_empty() {
            self.send_buf()?;
        }
        // Ours is empty now: the caller's buffer takes its place and is
        // sent; the caller gets ours (a reused one after the first few).
        std::mem::swap(&mut self.buf, &mut full);
        self.send_buf()?;
        Ok(full)
    }
}

impl Write for ThreadedWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.failed.is_some() {
            return Err(self.error());
        }
        if self.buf.len() + data.len() > BUF && !self.buf.is_empty() {
            self.send_buf()?;
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_buf()?;
        let tx = self.tx.as_ref().ok_or_else(|| self.error())?;
        if tx.send(Msg::Flush).is_err() {
            let _ = self.take_answers(Want::Nothing);
            return Err(self.error());
        }
        // Answers come in order: buffers written, then the flush.
        self.take_answers(Want::Flush)
    }
}

impl Drop for ThreadedWriter {
    fn drop(&mut self) {
        let _ = self.send_buf();
        self.tx = None; // ends the thread's loop; it flushes the sink
                        // Let it drain the answer channel so it never blocks on a full one.
        while self.back.recv().is_ok() {}
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    struct FailAfter(usize);
    impl Write for FailAfter {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            if self.0 < b.len() {
                return Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"));
            }
            self.0 -= b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn bytes_arrive_in_order_and_flush_waits_for_them() {
        let sink = Shared::default();
        let mut w = ThreadedWriter::new(sink.clone());
        let mut expect = Vec::new();
        for i in 0..200_000u32 {
            let line = format!("line {i}\n");
            w.write_all(line.as_bytes()).unwrap();
            expect.extend_from_slice(line.as_bytes());
            if i == 100_000 {
                w.flush().unwrap();
                assert_eq!(sink.0.lock().unwrap().len(), expect.len());
            }
        }
        w.write_all(&vec![b'x'; 3 * BUF]).unwrap();
        expect.extend(std::iter::repeat_n(b'x', 3 * BUF));
        w.flush().unwrap();
        assert!(*sink.0.lock().unwrap() == expect);
        drop(w);
    }

    #[test]
    fn a_failing_sink_is_reported_not_lost() {
        let mut w = ThreadedWriter::new(FailAfter(BUF + 10));
        let mut err = None;
        for _ in 0..10 {
            if let Err(e) = w.write_all(&vec![b'y'; BUF / 2]) {
                err = Some(e);
                break;
            }
        }
        let e = match err {
            Some(e) => e,
            None => w.flush().unwrap_err(),
        };
        assert_eq!(e.kind(), io::ErrorKind::StorageFull, "{e}");
        assert!(w.flush().is_err(), "the error sticks");
    }
}
