//! [`Bridged`]: an async reader over a blocking `Read + Seek` (an S3 object reader), so that
//! remote objects stream out through [`crate::Content`] like files do.
//!
//! Each read or seek runs on the blocking pool, one at a time; a read fetches up to
//! [`CHUNK`] bytes and hands them out over as many `poll_read` calls as the caller needs, so
//! memory stays at one chunk whatever the object size.

use std::future::Future;
use std::io::{self, Read, Seek, SeekFrom};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncSeek, ReadBuf};
use tokio::task::JoinHandle;

/// Bytes fetched by one blocking read.
const CHUNK: usize = 1024 * 1024;

type Job<R, T> = JoinHandle<(R, io::Result<T>)>;

/// An async view of a blocking reader.
#[derive(Debug)]
pub(crate) struct Bridged<R> {
    state: State<R>,
    /// Bytes read but not yet handed out, from `pos`.
    buffered: Vec<u8>,
    pos: usize,
    /// A seek requested by `start_seek`, run by `poll_complete`.
    seek: Option<SeekFrom>,
}

#[derive(Debug)]
enum State<R> {
    /// The reader, or `None` if a blocking task died with it.
    Idle(Option<R>),
    Reading(Job<R, Vec<u8>>),
    Seeking(Job<R, u64>),
}

fn lost() -> io::Error {
    io::Error::other("the object reader was lost by a failed worker")
}

impl<R: Read + Seek + Send + 'static> Bridged<R> {
    pub(crate) fn new(reader: R) -> Self {
        Self {
            state: State::Idle(Some(reader)),
            buffered: Vec::new(),
            pos: 0,
            seek: None,
        }
    }

    fn unread(&self) -> usize {
        self.buffered.len().saturating_sub(self.pos)
    }

    /// Takes the idle reader, failing if an operation is still running or the reader is gone.
    fn take_idle(&mut self) -> io::Result<R> {
        match &mut self.state {
            State::Idle(r) => r.take().ok_or_else(lost),
            _ => Err(io::Error::other("another operation is in progress")),
        }
    }
}

/// Polls a blocking job; a panicked worker takes the reader with it.
fn poll_job<R, T>(job: &mut Job<R, T>, cx: &mut Context<'_>) -> Poll<(Option<R>, io::Result<T>)> {
    match ready!(Pin::new(job).poll(cx)) {
        Ok((r, res)) => Poll::Ready((Some(r), res)),
        Err(e) => Poll::Ready((None, Err(io::Error::other(e)))),
    }
}

impl<R: Read + Seek + Send + Unpin + 'static> AsyncRead for Bridged<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.unread() > 0 {
                let n = this.unread().min(buf.remaining());
                let end = this.pos + n;
                buf.put_slice(this.buffered.get(this.pos..end).unwrap_or_default());
                this.pos = end;
                return Poll::Ready(Ok(()));
            }
            match &mut this.state {
                State::Reading(job) => {
                    let (r, res) = ready!(poll_job(job, cx));
                    this.state = State::Idle(r);
                    this.buffered = res?;
                    this.pos = 0;
                    if this.buffered.is_empty() {
                        return Poll::Ready(Ok(()));
                    }
                }
                State::Seeking(_) => {
                    return Poll::Ready(Err(io::Error::other("read while a seek is running")));
                }
                State::Idle(_) => {
                    let mut r = this.take_idle()?;
                    this.state = State::Reading(tokio::task::spawn_blocking(move || {
                        let mut chunk = vec![0u8; CHUNK];
                        let res = r.read(&mut chunk).map(|n| {
                            chunk.truncate(n);
                            chunk
                        });
                        (r, res)
                    }));
                }
            }
        }
    }
}

impl<R: Read + Seek + Send + Unpin + 'static> AsyncSeek for Bridged<R> {
    fn start_seek(self: Pin<&mut Self>, position: SeekFrom) -> io::Result<()> {
        let this = self.get_mut();
        if !matches!(this.state, State::Idle(Some(_))) {
            return Err(io::Error::other("another operation is in progress"));
        }
        // The reader is ahead of the caller by the bytes still buffered.
        let unread = i64::try_from(this.unread()).unwrap_or(i64::MAX);
        this.seek = Some(match position {
            SeekFrom::Current(n) => SeekFrom::Current(n.saturating_sub(unread)),
            other => other,
        });
        this.buffered.clear();
        this.pos = 0;
        Ok(())
    }

    fn poll_complete(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        let this = self.get_mut();
        loop {
            match &mut this.state {
                State::Seeking(job) => {
                    let (r, res) = ready!(poll_job(job, cx));
                    this.state = State::Idle(r);
                    return Poll::Ready(res);
                }
                State::Reading(_) => {
                    return Poll::Ready(Err(io::Error::other("seek while a read is running")));
                }
                State::Idle(_) => {
                    // Without a pending seek this reports the position, which is the
                    // reader's minus what is still buffered.
                    let unread = i64::try_from(this.unread()).unwrap_or(i64::MAX);
                    let to = this.seek.take().unwrap_or(SeekFrom::Current(-unread));
                    this.buffered.clear();
                    this.pos = 0;
                    let mut r = this.take_idle()?;
                    this.state = State::Seeking(tokio::task::spawn_blocking(move || {
                        let res = r.seek(to);
                        (r, res)
                    }));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use tokio::io::{AsyncReadExt, AsyncSeekExt};

    use super::*;

    #[tokio::test]
    async fn reads_and_seeks_like_the_blocking_reader() {
        let data: Vec<u8> = (0..3 * CHUNK + 17).map(|i| (i % 251) as u8).collect();
        let mut r = Bridged::new(Cursor::new(data.clone()));
        let mut head = vec![0u8; 10];
        r.read_exact(&mut head).await.unwrap();
        assert_eq!(head, data[..10]);
        // A relative seek accounts for the bytes buffered ahead of the caller.
        assert_eq!(r.seek(SeekFrom::Current(5)).await.unwrap(), 15);
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, data[15..]);
        assert_eq!(
            r.seek(SeekFrom::Start(CHUNK as u64 + 1)).await.unwrap(),
            CHUNK as u64 + 1
        );
        let mut one = [0u8; 1];
        r.read_exact(&mut one).await.unwrap();
        assert_eq!(one[0], data[CHUNK + 1]);
        assert_eq!(r.stream_position().await.unwrap(), CHUNK as u64 + 2);
    }
}
