//! Captured output of an instance: `stdout.log` and `stderr.log` in the
//! instance's `logs` directory, rotated at a size with N old files kept
//! (`stdout.log.1` is the newest), plus an in-memory ring of recent lines
//! that gives both streams one order and cursors for `weft logs -f`.
//!
//! A tail of one stream is read from the files (everything kept); a tail of
//! both streams, and following, come from the ring (the last
//! [`RING_LINES`] lines, in the order the agent read them).
//!
//! Cursors are `base + n` where `base` is the wall clock in microseconds
//! when the book was opened, so they keep growing across agent restarts.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};

use crate::output::OutputTail;
use crate::protocol::{LogLine, LogPage, LogQuery, LogStream};

/// Lines kept in memory per instance for ordering and following.
const RING_LINES: usize = 2_000;
/// A line longer than this is cut into pieces.
const MAX_LINE: usize = 64 << 10;

pub(crate) struct LogBook {
    dir: PathBuf,
    rotate_bytes: u64,
    keep: usize,
    inner: Mutex<Inner>,
}

struct Inner {
    stdout: Option<(File, u64)>,
    stderr: Option<(File, u64)>,
    ring: VecDeque<(u64, LogStream, String)>,
    next: u64,
}

impl LogBook {
    /// Opens (creating) `dir` and loads the newest kept lines into memory.
    pub(crate) fn open(dir: &Path, rotate_bytes: u64, keep: usize) -> io::Result<LogBook> {
        fs::create_dir_all(dir)?;
        let base = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let mut inner = Inner {
            stdout: None,
            stderr: None,
            ring: VecDeque::new(),
            next: base,
        };
        for stream in [LogStream::Stdout, LogStream::Stderr] {
            let path = dir.join(file_name(stream));
            let Ok(text) = fs::read(&path) else { continue };
            let text = String::from_utf8_lossy(&text);
            let lines: Vec<&str> = text.lines().collect();
            let skip = lines.len().saturating_sub(RING_LINES / 2);
            for line in &lines[skip..] {
                inner.push(stream, (*line).to_owned());
            }
        }
        Ok(LogBook {
            dir: dir.to_path_buf(),
            rotate_bytes: rotate_bytes.max(1),
            keep,
            inner: Mutex::new(inner),
        })
    }

    /// Appends one line (without its newline) to a stream.
    pub(crate) fn append(&self, stream: LogStream, line: String) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(error) = self.write_line(&mut inner, stream, &line) {
            tracing::warn!(dir = %self.dir.display(), %error, "failed to write a captured log line");
        }
        inner.push(stream, line);
    }

    fn write_line(&self, inner: &mut Inner, stream: LogStream, line: &str) -> io::Result<()> {
        let slot = match stream {
            LogStream::Stderr => &mut inner.stderr,
            _ => &mut inner.stdout,
        };
        if slot.is_none() {
            let path = self.dir.join(file_name(stream));
            let file = OpenOptions::new().create(true).append(true).open(&path)?;
            let size = file.metadata()?.len();
            *slot = Some((file, size));
        }
        let Some((file, size)) = slot.as_mut() else {
            return Ok(());
        };
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        file.write_all(&bytes)?;
        *size += bytes.len() as u64;
        if *size >= self.rotate_bytes {
            *slot = None;
            self.rotate(stream)?;
        }
        Ok(())
    }

    /// `x.log.(k)` → `x.log.(k+1)`, dropping the oldest; `x.log` → `x.log.1`.
    fn rotate(&self, stream: LogStream) -> io::Result<()> {
        let name = file_name(stream);
        let path = |k: usize| {
            if k == 0 {
                self.dir.join(name)
            } else {
                self.dir.join(format!("{name}.{k}"))
            }
        };
        if self.keep == 0 {
            return fs::remove_file(path(0));
        }
        match fs::remove_file(path(self.keep)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        for k in (0..self.keep).rev() {
            match fs::rename(path(k), path(k + 1)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// Lines for a query.
    pub(crate) fn query(&self, query: &LogQuery) -> io::Result<LogPage> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if query.after.is_none() && query.stream != LogStream::Both {
            // Under the lock, so the cursor is exactly after the last line.
            let lines = self.read_files(query.stream, query.tail)?;
            return Ok(LogPage {
                lines: lines
                    .into_iter()
                    .map(|text| LogLine {
                        stream: query.stream,
                        text,
                    })
                    .collect(),
                cursor: inner.next.saturating_sub(1),
            });
        }
        let wanted = |s: LogStream| query.stream == LogStream::Both || query.stream == s;
        let matching = inner.ring.iter().filter(|(_, s, _)| wanted(*s));
        let picked: Vec<&(u64, LogStream, String)> = match (query.after, query.tail) {
            (Some(after), _) => matching.filter(|(seq, _, _)| *seq > after).collect(),
            (None, Some(tail)) => {
                let all: Vec<_> = matching.collect();
                let skip = all.len().saturating_sub(tail);
                all[skip..].to_vec()
            }
            (None, None) => matching.collect(),
        };
        let cursor = picked
            .last()
            .map(|(seq, _, _)| *seq)
            .or(query.after)
            .unwrap_or_else(|| inner.next.saturating_sub(1));
        Ok(LogPage {
            lines: picked
                .into_iter()
                .map(|(_, stream, text)| LogLine {
                    stream: *stream,
                    text: text.clone(),
                })
                .collect(),
            cursor,
        })
    }

    /// The last `tail` lines (all when `None`) of a stream's files, oldest
    /// rotated file first.
    fn read_files(&self, stream: LogStream, tail: Option<usize>) -> io::Result<Vec<String>> {
        let name = file_name(stream);
        let mut chunks: Vec<Vec<String>> = Vec::new();
        let mut count = 0;
        for k in 0..=self.keep {
            let path = if k == 0 {
                self.dir.join(name)
            } else {
                self.dir.join(format!("{name}.{k}"))
            };
            let bytes = match fs::read(&path) {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let lines: Vec<String> = String::from_utf8_lossy(&bytes)
                .lines()
                .map(str::to_owned)
                .collect();
            count += lines.len();
            chunks.push(lines);
            if tail.is_some_and(|t| count >= t) {
                break;
            }
        }
        let all: Vec<String> = chunks.into_iter().rev().flatten().collect();
        let skip = tail.map_or(0, |t| all.len().saturating_sub(t));
        Ok(all.into_iter().skip(skip).collect())
    }
}

impl Inner {
    fn push(&mut self, stream: LogStream, text: String) {
        if self.ring.len() == RING_LINES {
            self.ring.pop_front();
        }
        self.ring.push_back((self.next, stream, text));
        self.next += 1;
    }
}

fn file_name(stream: LogStream) -> &'static str {
    match stream {
        LogStream::Stderr => "stderr.log",
        _ => "stdout.log",
    }
}

/// Copies a child's stream into the book line by line until it closes,
/// keeping its last lines in `tail` too.
pub(crate) async fn pump<R: AsyncRead + Unpin>(
    book: std::sync::Arc<LogBook>,
    tail: std::sync::Arc<OutputTail>,
    stream: LogStream,
    reader: R,
) {
    let mut reader = BufReader::with_capacity(16 << 10, reader);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let read = (&mut reader)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut buf)
            .await;
        match read {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                if buf.last() == Some(&b'\n') {
                    buf.pop();
                }
                if buf.last() == Some(&b'\r') {
                    buf.pop();
                }
                let line = String::from_utf8_lossy(&buf).into_owned();
                tail.push(stream, &line);
                book.append(stream, line);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::LogBook;
    use crate::protocol::{LogQuery, LogStream};

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever is written and however it rotates, what is kept is the
        /// newest lines in order, nothing else, at most `keep + 1` files.
        #[test]
        fn rotation_keeps_the_newest_lines_in_order(
            lines in proptest::collection::vec("[^\n\r]{0,40}", 0..200),
            rotate in 1u64..400,
            keep in 0usize..4,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let book = LogBook::open(dir.path(), rotate, keep).unwrap();
            for line in &lines {
                book.append(LogStream::Stdout, line.clone());
            }
            let page = book
                .query(&LogQuery { stream: LogStream::Stdout, tail: None, after: None })
                .unwrap();
            let kept: Vec<String> = page.lines.into_iter().map(|l| l.text).collect();
            prop_assert!(kept.len() <= lines.len());
            prop_assert_eq!(&kept[..], &lines[lines.len() - kept.len()..]);
            let files = std::fs::read_dir(dir.path()).unwrap().count();
            prop_assert!(files <= keep + 1, "{} files", files);
            let tail = book
                .query(&LogQuery { stream: LogStream::Stdout, tail: Some(3), after: None })
                .unwrap();
            prop_assert_eq!(tail.lines.len(), kept.len().min(3));
        }
    }
}
