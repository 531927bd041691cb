//! `link-child`: the child process of the parent-child link benchmark (`link-parent`
//! starts it; it is not meant to be run by hand).
//!
//! `link-child strata` is a strata program whose top object is a machine answering the
//! benchmark's messages: run by the parent's `Process::of(..)`, its link to the parent is
//! the private socket pair on descriptor 3. `link-child raw` and `link-child tokio` answer
//! the same requests as fixed-size frames on descriptor 3 directly, with blocking std I/O
//! or on a tokio runtime: the baselines.

#[path = "../link/protocol.rs"]
mod protocol;

use std::io::{BufReader, Read, Write};
use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;
use std::process::ExitCode;

use protocol::{
    kind, Ack, Answer, Done, Flush, Hit, Iam, Item, Whoami, ACK_EVERY, CHILD_FD, FRAME,
};
use strata::prelude::*;

/// The strata child's top object: answers round trips, counts streams.
#[derive(Default)]
struct Echo {
    count: u64,
    sum: u64,
}

#[strata::machine]
impl Echo {
    fn whoami(&mut self, cx: &mut Context<Self>, _: Whoami) -> Iam {
        Iam {
            address: cx.address(),
        }
    }

    fn hit(&mut self, _cx: &mut Context<Self>, m: Hit) -> Answer {
        Answer { value: m.value + 1 }
    }

    fn item(&mut self, cx: &mut Context<Self>, m: Item) {
        self.count += 1;
        self.sum = self.sum.wrapping_add(m.value);
        if self.count.is_multiple_of(ACK_EVERY) {
            cx.reply(Ack { count: self.count });
        }
    }

    fn flush(&mut self, cx: &mut Context<Self>, _: Flush) {
        cx.reply(Done {
            count: self.count,
            sum: self.sum,
        });
        self.count = 0;
        self.sum = 0;
    }
}

/// What a raw child does with one frame; `Some` is the frame to send back.
#[derive(Default)]
struct RawState {
    count: u64,
    sum: u64,
}

impl RawState {
    fn answer(&mut self, frame: &[u8; FRAME]) -> Result<Option<[u8; FRAME]>, String> {
        let (k, a, _) = protocol::decode(frame);
        Ok(match k {
            kind::HIT => Some(protocol::encode(kind::ANSWER, a + 1, 0)),
            kind::ITEM => {
                self.count += 1;
                self.sum = self.sum.wrapping_add(a);
                self.count
                    .is_multiple_of(ACK_EVERY)
                    .then(|| protocol::encode(kind::ACK, self.count, 0))
            }
            kind::FLUSH => {
                let done = protocol::encode(kind::DONE, self.count, self.sum);
                self.count = 0;
                self.sum = 0;
                Some(done)
            }
            other => return Err(format!("unexpected frame kind {other}")),
        })
    }
}

/// The socket the parent left on descriptor 3.
fn parent_socket() -> UnixStream {
    // SAFETY: the parent put its socket pair's other end on this descriptor for this
    // program alone, and it is taken once.
    unsafe { UnixStream::from_raw_fd(CHILD_FD) }
}

/// The raw baseline with blocking std I/O: reads frames until the parent closes.
fn raw() -> Result<(), String> {
    let mut writer = parent_socket();
    let mut reader = BufReader::with_capacity(
        64 * 1024,
        writer.try_clone().map_err(|e| format!("clone: {e}"))?,
    );
    let mut state = RawState::default();
    let mut frame = [0u8; FRAME];
    loop {
        match reader.read_exact(&mut frame) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(format!("read: {e}")),
        }
        if let Some(reply) = state.answer(&frame)? {
            writer
                .write_all(&reply)
                .map_err(|e| format!("write: {e}"))?;
        }
    }
}

/// The raw baseline on a tokio runtime (two workers, as the parent's).
fn tokio_raw() -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let socket = parent_socket();
    socket
        .set_nonblocking(true)
        .map_err(|e| format!("nonblocking: {e}"))?;
    let task = runtime.spawn(async move {
        let socket = tokio::net::UnixStream::from_std(socket).map_err(|e| e.to_string())?;
        let (read, mut write) = socket.into_split();
        let mut reader = tokio::io::BufReader::with_capacity(64 * 1024, read);
        let mut state = RawState::default();
        let mut frame = [0u8; FRAME];
        loop {
            match reader.read_exact(&mut frame).await {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(format!("read: {e}")),
            }
            if let Some(reply) = state.answer(&frame)? {
                write
                    .write_all(&reply)
                    .await
                    .map_err(|e| format!("write: {e}"))?;
            }
        }
    });
    runtime
        .block_on(task)
        .map_err(|e| format!("the task failed: {e}"))?
}

fn main() -> ExitCode {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let result = match mode.as_str() {
        protocol::child_mode::STRATA => return strata::main(Echo::default()),
        protocol::child_mode::RAW => raw(),
        protocol::child_mode::TOKIO => tokio_raw(),
        other => Err(format!(
            "unknown mode `{other}` (strata, raw or tokio; link-parent starts this program)"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("link-child: {e}");
            ExitCode::FAILURE
        }
    }
}
