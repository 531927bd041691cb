//! The byte streams a link runs over: TCP, and Unix sockets watched for reading only.
//!
//! A stream is a [`LinkStream`] for the handshake (plain async reads and writes), then
//! becomes a [`LinkIo`] for the life of the link: the reader task reads it, and whichever
//! thread sends a message writes it through a shared reference ([`LinkWrite`], held by the
//! write side in `outbox.rs`).

use std::future::Future;
use std::os::fd::AsRawFd;
use std::pin::Pin;

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, Interest};

/// A byte stream a link can run over: async reads and writes for the handshake, then
/// [`LinkIo`] for the life of the link.
pub(crate) trait LinkStream: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// What the stream becomes once the handshake is done.
    type Io: LinkIo;
    /// Turns the stream into the link's reader and writers' view of it.
    fn into_link_io(self) -> std::io::Result<Self::Io>;
}

/// The stream of a running link: read by the link's reader task, written through a shared
/// reference by whichever thread sends a message (see `LinkTx`).
pub(crate) trait LinkIo: LinkWrite {
    /// Reads what has arrived, waiting until something has.
    fn read_some<'a>(
        &'a self,
        buf: &'a mut [u8],
    ) -> impl Future<Output = std::io::Result<usize>> + Send + 'a;
}

/// The wait for write space on a [`LinkWrite`] (only taken when the socket was full).
pub(crate) type WritableWait<'a> = Pin<Box<dyn Future<Output = std::io::Result<()>> + Send + 'a>>;

/// The write side of a [`LinkIo`], as an object the link's outbox can hold.
pub(crate) trait LinkWrite: Send + Sync + 'static {
    /// Writes what the socket takes now (`WouldBlock` when it takes nothing).
    fn try_write_now(&self, buf: &[u8]) -> std::io::Result<usize>;
    /// Resolves when the socket may take more.
    fn writable(&self) -> WritableWait<'_>;
    /// Ends the write direction (the peer reads end-of-stream).
    fn shutdown_write(&self);
}

fn shutdown_write(fd: &impl AsRawFd) {
    // SAFETY: shutdown(2) on a descriptor the caller owns and keeps open.
    unsafe {
        libc::shutdown(fd.as_raw_fd(), libc::SHUT_WR);
    }
}

impl LinkStream for tokio::net::TcpStream {
    type Io = tokio::net::TcpStream;
    fn into_link_io(self) -> std::io::Result<Self::Io> {
        Ok(self)
    }
}

impl LinkIo for tokio::net::TcpStream {
    async fn read_some(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            self.readable().await?;
            match self.try_read(buf) {
                Err(e) if retry(&e) => {}
                other => return other,
            }
        }
    }
}

impl LinkWrite for tokio::net::TcpStream {
    fn try_write_now(&self, buf: &[u8]) -> std::io::Result<usize> {
        self.try_write(buf)
    }
    fn writable(&self) -> WritableWait<'_> {
        Box::pin(tokio::net::TcpStream::writable(self))
    }
    fn shutdown_write(&self) {
        shutdown_write(self)
    }
}

fn retry(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
    )
}

/// A Unix socket link, watched for reading only.
///
/// The kernel wakes a Unix socket's pollers for write space every time the peer reads, so a
/// socket watched for writing too would wake this process once more per message it sent.
/// The rare wait for write space registers a duplicate descriptor just for that wait.
pub(crate) struct UnixIo(AsyncFd<std::os::unix::net::UnixStream>);

impl LinkStream for tokio::net::UnixStream {
    type Io = UnixIo;
    fn into_link_io(self) -> std::io::Result<UnixIo> {
        let std_stream = self.into_std()?;
        std_stream.set_nonblocking(true)?;
        // SAFETY: the stream owns its descriptor, which stays open and unchanged for as
        // long as the AsyncFd holds it.
        let fd = unsafe { AsyncFd::register_with_interest(std_stream, Interest::READABLE)? };
        Ok(UnixIo(fd))
    }
}

impl LinkIo for UnixIo {
    async fn read_some(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::io::Read;
        loop {
            let mut ready = self.0.readable().await?;
            let mut stream: &std::os::unix::net::UnixStream = ready.get_ref().get_ref();
            match stream.read(buf) {
                // A short read took everything there was: wait for the next wake-up
                // instead of asking again only to hear `WouldBlock` (data arriving
                // meanwhile raises a new event, which this clearing does not undo).
                Ok(n) if n < buf.len() => {
                    ready.clear_ready();
                    return Ok(n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => ready.clear_ready(),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }
}

impl LinkWrite for UnixIo {
    fn try_write_now(&self, buf: &[u8]) -> std::io::Result<usize> {
        use std::io::Write;
        let mut stream: &std::os::unix::net::UnixStream = self.0.get_ref();
        stream.write(buf)
    }
    fn writable(&self) -> WritableWait<'_> {
        Box::pin(async move {
            let duplicate = self.0.get_ref().try_clone()?;
            // SAFETY: the duplicate owns its own descriptor, open and unchanged until the
            // AsyncFd is dropped at the end of this wait.
            let watch = unsafe { AsyncFd::register_with_interest(duplicate, Interest::WRITABLE)? };
            let _ready = watch.writable().await?;
            Ok(())
        })
    }
    fn shutdown_write(&self) {
        shutdown_write(self.0.get_ref())
    }
}
