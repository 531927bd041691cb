//! The sending side of a link: its outbox, the write side that drains it, and the writer
//! task.
//!
//! A sender (the router, on whatever thread sends) queues its message in the outbox, then
//! tries to take the write side: when it is free, the sender encodes everything queued and
//! writes it to the socket itself, with no task woken. Only when the socket is full (or
//! another thread holds the write side) is the link's writer task notified to carry on.
//! Order holds because every write happens under the write side's lock and drains the
//! outbox oldest first. Lock order: write side, then outbox (never the reverse).

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;

use super::frame::{self, Frame};
use super::io::LinkWrite;
use super::noise::{seal, Cipher};
use crate::message::AnyMessage;
use crate::runtime::cork::{self, Flush};
use crate::runtime::{self, Envelope};
use crate::standard::Faulted;
use crate::Address;

/// Something queued for the peer.
pub(crate) enum Outgoing {
    /// A local message, encoded when written.
    Message(Envelope),
    /// A frame relayed for a third node, already encoded (length prefix included).
    Relay(Vec<u8>),
    /// A control frame.
    Control(Frame),
}

/// The sending side of a link: an outbox, and the write side that drains it (see the
/// module doc).
pub(crate) struct LinkTx {
    /// Tells links apart in the route table.
    pub(crate) id: u64,
    outbox: Mutex<Outbox>,
    wake: tokio::sync::Notify,
    /// How many items the outbox holds before bounded pushes are refused.
    pub(crate) limit: usize,
    write: Mutex<WriteSide>,
}

struct Outbox {
    items: VecDeque<Outgoing>,
    closed: bool,
}

/// How far a drain of the outbox got.
enum Drained {
    /// Everything queued is written.
    Everything,
    /// The socket is full: the rest waits in the write side.
    SocketFull,
    /// The socket failed.
    Failed(String),
}

/// Encodes queued items into frames and writes them; held by one thread at a time.
struct WriteSide {
    stream: Arc<dyn LinkWrite>,
    cipher: Option<Cipher>,
    max_frame: usize,
    batch: VecDeque<Outgoing>,
    plain: Vec<u8>,
    /// Bytes ready for the socket (plaintext, or sealed), written up to `sent`.
    out: Vec<u8>,
    sent: usize,
    failed: Option<String>,
}

/// Buffers larger than this are given back after a burst.
const KEEP_BUFFER: usize = 1 << 20;

impl WriteSide {
    /// Writes what is pending, then drains the outbox until it is empty (or the socket
    /// is full, or it failed).
    fn drain(&mut self, outbox: &Mutex<Outbox>) -> Drained {
        loop {
            if let Some(e) = &self.failed {
                return Drained::Failed(e.clone());
            }
            while self.sent < self.out.len() {
                match self.stream.try_write_now(&self.out[self.sent..]) {
                    Ok(0) => self.failed = Some("the socket took no bytes".into()),
                    Ok(n) => self.sent += n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        return Drained::SocketFull
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => self.failed = Some(e.to_string()),
                }
                if let Some(e) = &self.failed {
                    return Drained::Failed(e.clone());
                }
            }
            self.out.clear();
            self.sent = 0;
            std::mem::swap(&mut self.batch, &mut outbox.lock().items);
            if self.batch.is_empty() {
                if self.out.capacity() > KEEP_BUFFER {
                    self.out = Vec::new();
                }
                if self.plain.capacity() > KEEP_BUFFER {
                    self.plain = Vec::new();
                }
                return Drained::Everything;
            }
            self.encode_batch();
        }
    }

    /// Encodes the batch into `out` (sealed when the link is encrypted).
    fn encode_batch(&mut self) {
        let max_frame = self.max_frame;
        let plain = if self.cipher.is_some() {
            self.plain.clear();
            &mut self.plain
        } else {
            &mut self.out
        };
        for item in self.batch.drain(..) {
            match item {
                Outgoing::Message(e) => {
                    let at = plain.len();
                    match frame::encode_message(plain, e.to, e.from, &e.message) {
                        Ok(()) if plain.len() - at - 4 <= max_frame => {}
                        Ok(()) => {
                            let size = plain.len() - at - 4;
                            plain.truncate(at);
                            undeliverable_back(e.from, e.to, format!("`{}` is {size} bytes, over the link's maximum frame of {max_frame}", e.type_name()));
                        }
                        Err(err) => undeliverable_back(e.from, e.to, err.to_string()),
                    }
                }
                Outgoing::Relay(bytes) => plain.extend_from_slice(&bytes),
                Outgoing::Control(f) => frame::encode_control(plain, &f),
            }
        }
        if self.cipher.is_some() {
            if let Err(e) = seal(&self.cipher, &self.plain, &mut self.out) {
                self.failed = Some(e.to_string());
            }
        }
    }
}

/// Answers a local sender whose message the link cannot carry.
fn undeliverable_back(from: Address, to: Address, reason: String) {
    if from.is_local() {
        runtime::answer_for(to, from, AnyMessage::new(Faulted::new(reason)));
    }
}

impl Flush for LinkTx {
    /// Writes what is queued now when nobody else is writing; otherwise (or when the
    /// socket is full) the writer task will.
    fn flush(&self) {
        let written = match self.write.try_lock() {
            Some(mut w) => matches!(w.drain(&self.outbox), Drained::Everything),
            None => false,
        };
        if !written {
            self.wake.notify_one();
        }
    }
}

impl LinkTx {
    /// The sending side of a link writing to `stream`, sealing with `cipher` when
    /// encrypted; `limit` bounds its outbox.
    pub(crate) fn new(
        id: u64,
        stream: Arc<dyn LinkWrite>,
        cipher: Option<Cipher>,
        max_frame: usize,
        limit: usize,
    ) -> Self {
        LinkTx {
            id,
            outbox: Mutex::new(Outbox {
                items: VecDeque::new(),
                closed: false,
            }),
            wake: tokio::sync::Notify::new(),
            limit,
            write: Mutex::new(WriteSide {
                stream,
                cipher,
                max_frame,
                batch: VecDeque::new(),
                plain: Vec::new(),
                out: Vec::with_capacity(64 * 1024),
                sent: 0,
                failed: None,
            }),
        }
    }

    /// Queues an item, then writes it at once — or, while the sending object's turn
    /// lasts (see [`cork`](crate::runtime::cork)), when the turn ends, together with
    /// whatever else the turn sent. `bounded` items are refused when the outbox is full;
    /// every item is refused once the link is closing.
    pub(crate) fn push(self: &Arc<Self>, item: Outgoing, bounded: bool) -> Result<(), Outgoing> {
        {
            let mut outbox = self.outbox.lock();
            if outbox.closed || (bounded && outbox.items.len() >= self.limit) {
                return Err(item);
            }
            outbox.items.push_back(item);
        }
        if !cork::defer(self) {
            self.flush();
        }
        Ok(())
    }

    /// Refuses further items and returns how many messages were not yet written; `last`,
    /// when given, is the one frame still written (the CLOSE that tells the peer why).
    pub(crate) fn close(&self, last: Option<Frame>) -> usize {
        let unsent = {
            let mut outbox = self.outbox.lock();
            outbox.closed = true;
            let unsent = outbox
                .items
                .iter()
                .filter(|o| matches!(o, Outgoing::Message(_)))
                .count();
            outbox.items.clear();
            outbox.items.extend(last.map(Outgoing::Control));
            unsent
        };
        self.wake.notify_one();
        unsent
    }
}

/// The link's writer task: carries on when a sender could not write everything itself
/// (the socket was full, or the write side was busy), and writes the last frames and
/// shuts the write direction when the link closes.
pub(crate) async fn writer(tx: Arc<LinkTx>) -> Result<(), String> {
    loop {
        let (drained, stream) = {
            let mut w = tx.write.lock();
            let drained = w.drain(&tx.outbox);
            if matches!(drained, Drained::Everything) {
                let outbox = tx.outbox.lock();
                if outbox.closed && outbox.items.is_empty() {
                    w.stream.shutdown_write();
                    return Ok(());
                }
            }
            (drained, w.stream.clone())
        };
        match drained {
            Drained::Everything => tx.wake.notified().await,
            Drained::SocketFull => stream.writable().await.map_err(|e| e.to_string())?,
            Drained::Failed(e) => return Err(e),
        }
    }
}
