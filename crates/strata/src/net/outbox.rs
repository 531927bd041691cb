//! The sending side of a link: its outbox, the write side that drains it, and the writer
//! task.
//!
//! A sender (the router, on whatever thread sends) queues its message in the outbox, then
//! tries to take the write side: when it is free, the sender encodes everything queued and
//! writes it to the socket itself, with no task woken. Only when the socket is full (or
//! another thread holds the write side) is the link's writer task notified to carry on.
//! Order holds because every write happens under the write side's lock and drains the
//! outbox oldest first. Lock order: write side, then outbox (never the reverse).
//!
//! Memory is bounded in bytes: what the socket refused stays encoded in the write side,
//! and what is queued meanwhile is encoded behind it in batches of `ENCODE_BEHIND` (32), so
//! the bytes waiting for the peer are known to within that many frames. Once they pass the link's budget (`outbox_bytes`), or the socket
//! takes nothing for the write time-out, the peer is not reading: the link closes (the
//! writer ends with [`WriteEnd::NotReading`]) instead of growing the process. PONGs and
//! `Overloaded` notices are coalesced: at most one PONG, and one notice per (receiver,
//! sender) pair, waits at a time.
//!
//! The outbox also keeps the link's *grants* (`grants.rs`): every address that went to the
//! peer, as a sender or inside a message, which the peer may then send to.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::frame::{self, Frame};
use super::grants::Grants;
use super::io::LinkWrite;
use super::noise::{seal, Cipher};
use crate::address::addresses_written_while;
use crate::message::AnyMessage;
use crate::runtime::cork::{self, Flush};
use crate::runtime::{self, Envelope};
use crate::standard::{Faulted, Overloaded};
use crate::Address;

/// Something queued for the peer.
pub(crate) enum Outgoing {
    /// A local message, encoded when written.
    Message(Envelope),
    /// A frame relayed for a third node, already encoded (length prefix included), and
    /// its sender (granted to the peer, so that replies can come back).
    Relay(Vec<u8>, Address),
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
    /// Tells the writer, waiting for write space, that a sender found the budget spent.
    spent: tokio::sync::Notify,
    /// How many items the outbox holds before bounded pushes are refused.
    pub(crate) limit: usize,
    /// The largest frame the peer accepts (relayed frames are checked against it).
    pub(crate) max_frame: usize,
    /// How long the socket may take nothing while bytes wait before the link closes.
    write_timeout: Duration,
    /// How many routes this link has taught the route table.
    learned: std::sync::atomic::AtomicUsize,
    write: Mutex<WriteSide>,
}

struct Outbox {
    items: VecDeque<Outgoing>,
    closed: bool,
    /// A PONG is owed to the peer: it goes at the end of the next batch.
    pong_owed: bool,
    /// A PONG is encoded but not yet written (the socket was full): no other is owed
    /// until it is.
    pong_waiting: bool,
    /// (receiver, sender) pairs with an `Overloaded` notice queued.
    notices: HashSet<(Address, Address)>,
    /// The addresses given to the peer.
    grants: Grants,
}

impl Outbox {
    /// Moves what is queued into `batch` (empty), clearing the coalescing marks.
    fn take_into(&mut self, batch: &mut VecDeque<Outgoing>) {
        std::mem::swap(batch, &mut self.items);
        if std::mem::take(&mut self.pong_owed) {
            batch.push_back(Outgoing::Control(Frame::Pong));
            self.pong_waiting = true;
        }
        self.notices.clear();
    }
}

/// How far a drain of the outbox got.
enum Drained {
    /// Everything queued is written.
    Everything,
    /// The socket is full: the rest waits in the write side.
    SocketFull,
    /// The socket failed.
    Failed(String),
    /// More bytes wait for the peer than the budget allows.
    OverBudget {
        /// The bytes waiting.
        waiting: usize,
        /// The link's budget.
        budget: usize,
    },
}

/// Why the writer task ended early.
#[derive(Debug)]
pub(crate) enum WriteEnd {
    /// The socket failed.
    Failed(String),
    /// The peer does not read what it is sent: why, with figures.
    NotReading(String),
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
    budget: usize,
    /// Bytes written in all (the writer watches it for progress).
    written: u64,
}

/// While the socket is full, queued items are encoded behind what waits once there are
/// this many: so the unencoded part of the outbox holds at most this many frames.
const ENCODE_BEHIND: usize = 32;

/// Buffers larger than this are given back after a burst.
const KEEP_BUFFER: usize = 1 << 20;

impl WriteSide {
    /// Writes what is pending, then drains the outbox until it is empty (or the socket
    /// is full, or it failed). When the socket is full, what is queued is encoded behind
    /// what waits, so the bytes waiting are known and checked against the budget.
    fn drain(&mut self, outbox: &Mutex<Outbox>) -> Drained {
        loop {
            if let Some(e) = &self.failed {
                return Drained::Failed(e.clone());
            }
            while self.sent < self.out.len() {
                match self.stream.try_write_now(&self.out[self.sent..]) {
                    Ok(0) => self.failed = Some("the socket took no bytes".into()),
                    Ok(n) => {
                        self.sent += n;
                        self.written += n as u64;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        return self.socket_full(outbox)
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
            {
                let mut outbox = outbox.lock();
                outbox.pong_waiting = false; // everything encoded so far is written
                outbox.take_into(&mut self.batch);
            }
            if self.batch.is_empty() {
                if self.out.capacity() > KEEP_BUFFER {
                    self.out = Vec::new();
                }
                if self.plain.capacity() > KEEP_BUFFER {
                    self.plain = Vec::new();
                }
                return Drained::Everything;
            }
            self.encode_batch(outbox);
        }
    }

    /// The socket is full: encodes what is queued behind what waits, and says whether
    /// the bytes waiting are still within the budget.
    fn socket_full(&mut self, outbox: &Mutex<Outbox>) -> Drained {
        {
            let mut outbox = outbox.lock();
            // Small batches wait queued (encoding them one by one costs); at most
            // ENCODE_BEHIND items are ever unencoded, so memory stays bounded.
            if outbox.items.len() >= ENCODE_BEHIND {
                outbox.take_into(&mut self.batch);
            }
        }
        if !self.batch.is_empty() {
            if self.sent > 0 && self.sent >= self.out.len() / 2 {
                self.out.drain(..self.sent);
                self.sent = 0;
            }
            self.encode_batch(outbox);
        }
        match self.out.len() - self.sent {
            waiting if waiting > self.budget => Drained::OverBudget {
                waiting,
                budget: self.budget,
            },
            _ => Drained::SocketFull,
        }
    }

    /// Encodes the batch behind `out` (sealed when the link is encrypted); the addresses
    /// inside the messages become grants of the link.
    fn encode_batch(&mut self, outbox: &Mutex<Outbox>) {
        let mut written = None;
        addresses_written_while(
            || self.encode_items(),
            |a| written.get_or_insert_with(|| outbox.lock()).grants.give(a),
        );
        drop(written);
        if self.cipher.is_some() {
            if let Err(e) = seal(&self.cipher, &self.plain, &mut self.out) {
                self.failed = Some(e.to_string());
            }
        }
    }

    fn encode_items(&mut self) {
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
                    let left = e
                        .deadline
                        .map(|d| d.saturating_duration_since(std::time::Instant::now()));
                    match frame::encode_message_within(plain, e.to, e.from, left, &e.message) {
                        Ok(()) if plain.len() - at - 4 <= max_frame => {}
                        Ok(()) => {
                            let size = plain.len() - at - 4;
                            plain.truncate(at);
                            undeliverable_back(e.from, e.to, format!("`{}` is {size} bytes, over the link's maximum frame of {max_frame}", e.type_name()));
                        }
                        Err(err) => undeliverable_back(e.from, e.to, err.to_string()),
                    }
                }
                Outgoing::Relay(bytes, _) => plain.extend_from_slice(&bytes),
                Outgoing::Control(f) => frame::encode_control(plain, &f),
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
            Some(mut w) => match w.drain(&self.outbox) {
                Drained::Everything => true,
                Drained::OverBudget { .. } => {
                    // The writer task ends the link; refuse more meanwhile.
                    self.outbox.lock().closed = true;
                    self.spent.notify_one();
                    false
                }
                Drained::SocketFull | Drained::Failed(_) => false,
            },
            None => false,
        };
        if !written {
            self.wake.notify_one();
        }
    }
}

impl LinkTx {
    /// The sending side of a link writing to `stream`, sealing with `cipher` when
    /// encrypted, with the limits of `settings`; `owner` (this end's, named in HELLO) and
    /// `settings.grants` are the peer's first grants.
    pub(crate) fn new(
        id: u64,
        stream: Arc<dyn LinkWrite>,
        cipher: Option<Cipher>,
        settings: &super::link::LinkSettings,
        owner: Address,
    ) -> Self {
        let max_frame = settings.max_frame;
        let budget = settings.outbox_bytes.max(2 * max_frame + 64 * 1024);
        let mut grants = Grants::default();
        grants.give(owner);
        for &a in &settings.grants {
            grants.give(a);
        }
        LinkTx {
            id,
            outbox: Mutex::new(Outbox {
                items: VecDeque::new(),
                closed: false,
                pong_owed: false,
                pong_waiting: false,
                notices: HashSet::new(),
                grants,
            }),
            wake: tokio::sync::Notify::new(),
            spent: tokio::sync::Notify::new(),
            limit: settings.outbox_limit,
            max_frame,
            write_timeout: settings.write_timeout,
            learned: std::sync::atomic::AtomicUsize::new(0),
            write: Mutex::new(WriteSide {
                stream,
                cipher,
                max_frame,
                batch: VecDeque::new(),
                plain: Vec::new(),
                out: Vec::new(), // grows with the first burst (an idle link holds nothing)
                sent: 0,
                failed: None,
                budget,
                written: 0,
            }),
        }
    }

    /// Counts one more route taught by this link; false (and nothing counted) once it
    /// has taught [`MAX_LEARNED_PER_LINK`](super::routes::MAX_LEARNED_PER_LINK).
    pub(crate) fn learned_one_more(&self) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        self.learned
            .fetch_update(Relaxed, Relaxed, |n| {
                (n < super::routes::MAX_LEARNED_PER_LINK).then_some(n + 1)
            })
            .is_ok()
    }

    /// True when `address` was given to the peer (see `grants.rs`).
    pub(crate) fn granted(&self, address: Address) -> bool {
        self.outbox.lock().grants.holds(address)
    }

    /// Gives `address` to the peer without sending it (the directory's publications).
    #[allow(dead_code)]
    pub(crate) fn grant(&self, address: Address) {
        self.outbox.lock().grants.give(address);
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
            match &item {
                Outgoing::Message(e) => {
                    // Notices come unbounded (from the reader), ordinary sends bounded.
                    if !bounded
                        && e.message.is::<Overloaded>()
                        && !outbox.notices.insert((e.to, e.from))
                    {
                        return Ok(()); // one notice per pair waits at a time
                    }
                    outbox.grants.give(e.from);
                }
                Outgoing::Relay(_, from) => outbox.grants.give(*from),
                Outgoing::Control(Frame::Pong) => {
                    // At most one PONG is owed or waits; it goes with the next batch.
                    if !outbox.pong_waiting {
                        outbox.pong_owed = true;
                    }
                    drop(outbox);
                    if !cork::defer(self) {
                        self.flush();
                    }
                    return Ok(());
                }
                Outgoing::Control(_) => {}
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
/// shuts the write direction when the link closes. Ends early when the socket fails or
/// the peer does not read (over the budget, or nothing taken for the write time-out).
pub(crate) async fn writer(tx: Arc<LinkTx>) -> Result<(), WriteEnd> {
    // The last count of bytes written, and since when it has not moved while bytes waited.
    let mut progress: Option<(u64, tokio::time::Instant)> = None;
    loop {
        let (drained, stream, written) = {
            let mut w = tx.write.lock();
            let drained = w.drain(&tx.outbox);
            if matches!(drained, Drained::Everything) {
                let outbox = tx.outbox.lock();
                if outbox.closed && outbox.items.is_empty() {
                    w.stream.shutdown_write();
                    return Ok(());
                }
            }
            (drained, w.stream.clone(), w.written)
        };
        match drained {
            Drained::Everything => {
                progress = None;
                tx.wake.notified().await
            }
            Drained::SocketFull => {
                let since = match progress {
                    Some((at, since)) if at == written => since,
                    _ => tokio::time::Instant::now(),
                };
                progress = Some((written, since));
                // Until the socket takes more, or a sender finds the budget spent.
                let wait = async {
                    tokio::select! {
                        r = stream.writable() => r,
                        _ = tx.spent.notified() => Ok(()),
                    }
                };
                match tokio::time::timeout_at(since + tx.write_timeout, wait).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return Err(WriteEnd::Failed(e.to_string())),
                    Err(_) => {
                        return Err(WriteEnd::NotReading(format!(
                            "the peer took nothing for {:?} while bytes waited",
                            tx.write_timeout
                        )))
                    }
                }
            }
            Drained::Failed(e) => return Err(WriteEnd::Failed(e)),
            Drained::OverBudget { waiting, budget } => {
                tx.outbox.lock().closed = true;
                return Err(WriteEnd::NotReading(format!(
                    "{waiting} bytes wait for the peer, over the link's budget of {budget}"
                )));
            }
        }
    }
}
