//! The last words of a process: the last few non-blank lines it wrote to
//! each stream, kept beside the log book so that a failure message can
//! say why (``startup task `./setup.sh` exited with status 1: ERROR: No
//! matching distribution found for nosuchpkg``) instead of sending the user
//! to logs of an instance that is already gone.

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::protocol::LogStream;

/// Lines of a stream a summary ends with, at most.
pub(crate) const SUMMARY_LINES: usize = 5;
/// Bytes of a summary, at most (cut at a character boundary, from the front).
pub(crate) const SUMMARY_BYTES: usize = 1024;

/// The last [`SUMMARY_LINES`] non-blank lines of each stream of one process.
#[derive(Debug, Default)]
pub(crate) struct OutputTail {
    inner: Mutex<Streams>,
}

#[derive(Debug, Default)]
struct Streams {
    stdout: VecDeque<String>,
    stderr: VecDeque<String>,
}

impl OutputTail {
    /// Keeps `line` (a line of `stream`, without its newline) if it is not
    /// blank, forgetting the oldest beyond [`SUMMARY_LINES`].
    pub(crate) fn push(&self, stream: LogStream, line: &str) {
        let line = clean(line);
        if line.is_empty() {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let lines = match stream {
            LogStream::Stderr => &mut inner.stderr,
            _ => &mut inner.stdout,
        };
        if lines.len() == SUMMARY_LINES {
            lines.pop_front();
        }
        // A line may be up to a log line long; only its end can be shown.
        lines.push_back(tail_bytes(&line, SUMMARY_BYTES).to_owned());
    }

    /// The last lines of stderr, or of stdout when stderr had none, joined
    /// with newlines and at most [`SUMMARY_BYTES`] long; `None` when the
    /// process wrote nothing but blank lines.
    pub(crate) fn summary(&self) -> Option<String> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let lines = if inner.stderr.is_empty() {
            &inner.stdout
        } else {
            &inner.stderr
        };
        if lines.is_empty() {
            return None;
        }
        let joined = lines
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\n");
        Some(tail_bytes(&joined, SUMMARY_BYTES).trim_start().to_owned())
    }
}

/// The line without control characters (colour escapes, carriage
/// returns, NULs; tabs become spaces) and without surrounding whitespace.
fn clean(line: &str) -> String {
    let cleaned: String = line
        .chars()
        .filter_map(|c| match c {
            '\t' => Some(' '),
            c if c.is_control() => None,
            c => Some(c),
        })
        .collect();
    cleaned.trim().to_owned()
}

/// The last at most `max` bytes of `s`, starting at a character boundary.
fn tail_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

#[cfg(test)]
mod tests {
    use super::{OutputTail, SUMMARY_BYTES};
    use crate::protocol::LogStream::{self, Stderr, Stdout};

    #[test]
    fn the_summary_is_the_last_lines_of_stderr_else_of_stdout() {
        let long = "é".repeat(1000);
        type Case<'a> = (Vec<(LogStream, &'a str)>, Option<&'a str>);
        let cases: Vec<Case> = vec![
            (vec![], None),
            (vec![(Stdout, "  "), (Stderr, "\t\r")], None),
            (
                vec![(Stdout, "doing"), (Stderr, "no such thing")],
                Some("no such thing"),
            ),
            (vec![(Stdout, "only out"), (Stdout, "")], Some("only out")),
            (
                vec![
                    (Stderr, "a"),
                    (Stderr, "b"),
                    (Stderr, "c"),
                    (Stderr, "d"),
                    (Stderr, "e"),
                    (Stderr, "f"),
                    (Stderr, "g"),
                ],
                Some("c\nd\ne\nf\ng"),
            ),
            (
                vec![(Stderr, "  ERROR: \x1b[31mno\x1b[0m  \r")],
                Some("ERROR: [31mno[0m"),
            ),
            (vec![(Stderr, "x\ty")], Some("x y")),
        ];
        for (lines, expected) in cases {
            let tail = OutputTail::default();
            for (stream, line) in &lines {
                tail.push(*stream, line);
            }
            assert_eq!(tail.summary().as_deref(), expected, "{lines:?}");
        }
        let tail = OutputTail::default();
        tail.push(Stderr, "first");
        tail.push(Stderr, &long);
        let summary = tail.summary().unwrap();
        assert!(summary.len() <= SUMMARY_BYTES, "{} bytes", summary.len());
        assert!(summary.chars().all(|c| c == 'é'), "{summary}");
    }
}
