//! Line-oriented trace files (trawl NDJSON, `evtx_dump` JSON lines): reading
//! lines with a length bound, alone or in blocks that workers parse in
//! parallel.
//!
//! ```
//! use trawl_replay::lines::{LineSource, RawLine};
//!
//! let mut src = LineSource::new(&b"a\r\n\n{}\n"[..], 16);
//! assert!(matches!(src.next_line(), Some((1, RawLine::Text(b"a")))));
//! assert!(matches!(src.next_line(), Some((2, RawLine::Text(b"")))));
//! assert!(matches!(src.next_line(), Some((3, RawLine::Text(b"{}")))));
//! assert!(src.next_line().is_none());
//! ```

use std::io::{self, BufRead};
use std::ops::Range;

/// One line as read.
#[derive(Debug)]
pub enum RawLine<'a> {
    /// The line's bytes without `\n` / `\r\n`.
    Text(&'a [u8]),
    /// Longer than the limit: its bytes were read past and dropped.
    TooLong,
    /// Reading failed; no line follows.
    Failed(io::Error),
}

/// Reads lines of at most `max_line` bytes; a longer line is passed over
/// without being held in memory.
pub struct LineSource<R> {
    input: R,
    buf: Vec<u8>,
    line: u64,
    max_line: usize,
    done: bool,
}

impl<R: BufRead> LineSource<R> {
    /// Lines of `input`, each at most `max_line` bytes.
    pub fn new(input: R, max_line: usize) -> Self {
        LineSource {
            input,
            buf: Vec::with_capacity(4096),
            line: 0,
            max_line,
            done: false,
        }
    }

    /// The limit lines are held to.
    pub fn max_line(&self) -> usize {
        self.max_line
    }

    /// The next line and its 1-based number; `None` at the end (and after a
    /// read error, which is returned once as [`RawLine::Failed`]).
    pub fn next_line(&mut self) -> Option<(u64, RawLine<'_>)> {
        if self.done {
            return None;
        }
        match self.fill() {
            Ok(None) => {
                self.done = true;
                None
            }
            Ok(Some(too_long)) => {
                self.line += 1;
                Some((
                    self.line,
                    if too_long {
                        RawLine::TooLong
                    } else {
                        RawLine::Text(trim_eol(&self.buf))
                    },
                ))
            }
            Err(e) => {
                self.done = true;
                Some((self.line + 1, RawLine::Failed(e)))
            }
        }
    }

    /// Reads the next line into `buf`. `Ok(None)` at the end; `Ok(Some(true))`
    /// when the line was longer than the limit (its bytes were consumed and
    /// dropped).
    fn fill(&mut self) -> io::Result<Option<bool>> {
        self.buf.clear();
        let (mut any, mut too_long) = (false, false);
        loop {
            let available = match self.input.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                return Ok(any.then_some(too_long));
            }
            any = true;
            let (chunk, end) = match memchr::memchr(b'\n', available) {
                Some(i) => (&available[..=i], true),
                None => (available, false),
            };
            if !too_long {
                if self.buf.len() + chunk.len() > self.max_line + 2 {
                    too_long = true;
                    self.buf = Vec::with_capacity(4096);
                } else {
                    self.buf.extend_from_slice(chunk);
                }
            }
            let n = chunk.len();
            self.input.consume(n);
            if end {
                return Ok(Some(too_long));
            }
        }
    }

    /// Reads up to `max_lines` non-blank lines, or until the block holds
    /// `max_bytes`, into one block; `None` at the end of the input.
    pub fn next_block(&mut self, max_lines: usize, max_bytes: usize) -> Option<LineBlock> {
        let mut block = LineBlock::default();
        while block.lines.len() < max_lines && block.text.len() < max_bytes {
            let max_line = self.max_line;
            let Some((line, raw)) = self.next_line() else {
                break;
            };
            let item = match raw {
                RawLine::Text(t) if t.iter().all(u8::is_ascii_whitespace) => continue,
                RawLine::Text(t) => {
                    let start = block.text.len();
                    block.text.extend_from_slice(t);
                    Ok(start..block.text.len())
                }
                RawLine::TooLong => Err(format!("line longer than {max_line} bytes")),
                RawLine::Failed(e) => Err(format!("read error, rest of the file skipped: {e}")),
            };
            block.lines.push(BlockLine { line, item });
        }
        (!block.lines.is_empty()).then_some(block)
    }
}

fn trim_eol(b: &[u8]) -> &[u8] {
    let b = b.strip_suffix(b"\n").unwrap_or(b);
    b.strip_suffix(b"\r").unwrap_or(b)
}

/// Consecutive lines of one file, read on one thread and parsed on another.
#[derive(Debug, Default)]
pub struct LineBlock {
    /// The lines' bytes, one after another.
    pub text: Vec<u8>,
    /// Each non-blank line: its number and its range in `text`, or why it
    /// could not be read.
    pub lines: Vec<BlockLine>,
}

/// One line of a [`LineBlock`].
#[derive(Debug)]
pub struct BlockLine {
    /// 1-based line number.
    pub line: u64,
    /// Where the line's bytes are in the block, or why it was not read.
    pub item: Result<Range<usize>, String>,
}

impl LineBlock {
    /// Each line's number and text (or the reason it cannot be used, such
    /// as invalid UTF-8), in order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, Result<&str, String>)> {
        self.lines.iter().map(|l| {
            let text = match &l.item {
                Ok(r) => std::str::from_utf8(&self.text[r.clone()])
                    .map_err(|e| format!("not UTF-8 text ({e})")),
                Err(reason) => Err(reason.clone()),
            };
            (l.line, text)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_skip_blank_lines_and_keep_numbers() {
        let text = b"a\n\n  \nb\r\nccccccccccccccccccccccc\n\xff\nd";
        let mut src = LineSource::new(&text[..], 8);
        let mut got = Vec::new();
        while let Some(block) = src.next_block(2, 1 << 20) {
            assert!(block.lines.len() <= 2);
            got.extend(block.iter().map(|(n, t)| format!("{n}:{t:?}")));
        }
        assert_eq!(
            got,
            [
                "1:Ok(\"a\")",
                "4:Ok(\"b\")",
                "5:Err(\"line longer than 8 bytes\")",
                "6:Err(\"not UTF-8 text (invalid utf-8 sequence of 1 bytes from index 0)\")",
                "7:Ok(\"d\")"
            ]
        );
    }

    #[test]
    fn block_size_bounds_bytes() {
        let text = "x\n".repeat(100);
        let mut src = LineSource::new(text.as_bytes(), 8);
        let first = src.next_block(1000, 10).unwrap();
        assert_eq!(first.lines.len(), 10);
    }
}
