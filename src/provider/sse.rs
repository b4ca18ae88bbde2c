//! An incremental parser for server-sent events. It is fed the body in whatever
//! chunks the network delivers: an event, a line or a multi-byte UTF-8 character may
//! be cut anywhere between two chunks.

/// One dispatched event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Parser state between chunks.
#[derive(Default)]
pub struct SseParser {
    /// Bytes of the current, unfinished line. Lines end at an ASCII byte, so a line is
    /// always whole UTF-8 once it ends, however its bytes were split.
    line: Vec<u8>,
    /// A `\r` ended the last chunk, so a `\n` at the start of the next one belongs to it.
    after_cr: bool,
    /// The first line has been read (a byte order mark may only start the stream).
    past_first_line: bool,
    event: Option<String>,
    data: Option<String>,
}

impl SseParser {
    /// Creates an empty parser.
    pub fn new() -> SseParser {
        SseParser::default()
    }

    /// Feeds a chunk and returns the events it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut events = Vec::new();
        for &byte in chunk {
            if self.after_cr {
                self.after_cr = false;
                if byte == b'\n' {
                    continue;
                }
            }
            match byte {
                b'\n' => self.end_line(&mut events),
                b'\r' => {
                    self.after_cr = true;
                    self.end_line(&mut events);
                }
                _ => self.line.push(byte),
            }
        }
        events
    }

    /// Ends the stream. A final event without its blank line is still dispatched,
    /// because some servers close the stream right after the last `data:` line.
    pub fn finish(&mut self) -> Vec<SseEvent> {
        let mut events = Vec::new();
        if !self.line.is_empty() {
            self.end_line(&mut events);
        }
        self.dispatch(&mut events);
        events
    }

    fn end_line(&mut self, events: &mut Vec<SseEvent>) {
        let mut line = String::from_utf8_lossy(&self.line).into_owned();
        self.line.clear();
        if !self.past_first_line {
            self.past_first_line = true;
            // The standard skips one byte order mark at the start of the stream.
            if let Some(rest) = line.strip_prefix('\u{FEFF}') {
                line = rest.to_string();
            }
        }
        if line.is_empty() {
            self.dispatch(events);
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.find(':') {
            Some(i) => {
                let value = &line[i + 1..];
                (&line[..i], value.strip_prefix(' ').unwrap_or(value))
            }
            None => (line.as_str(), ""),
        };
        match field {
            "event" => self.event = Some(value.to_string()),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            _ => {}
        }
    }

    fn dispatch(&mut self, events: &mut Vec<SseEvent>) {
        let event = self.event.take();
        // As the standard says, an event whose data is empty is not dispatched (a
        // keep-alive `data:` line, for example).
        if let Some(data) = self.data.take().filter(|d| !d.is_empty()) {
            events.push(SseEvent { event, data });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = "event: message_start\ndata: {\"a\":1}\n\n: comment\ndata: h\u{e9}llo \u{1F600}\ndata: second\n\nevent: x\r\ndata:no-space\r\n\r\ndata: [DONE]\n\n";

    fn parse_in(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for c in chunks {
            out.extend(p.feed(c));
        }
        out.extend(p.finish());
        out
    }

    #[test]
    fn parses_whole_stream() {
        let events = parse_in(&[STREAM.as_bytes()]);
        assert_eq!(events.len(), 4);
        assert_eq!(events[0].event.as_deref(), Some("message_start"));
        assert_eq!(events[1].data, "h\u{e9}llo \u{1F600}\nsecond");
        assert_eq!(events[2].event.as_deref(), Some("x"));
        assert_eq!(events[2].data, "no-space");
        assert_eq!(events[3].data, "[DONE]");
    }

    #[test]
    fn same_events_for_every_split_point() {
        let whole = parse_in(&[STREAM.as_bytes()]);
        let bytes = STREAM.as_bytes();
        for cut in 0..=bytes.len() {
            assert_eq!(parse_in(&[&bytes[..cut], &bytes[cut..]]), whole, "cut at {cut}");
        }
        for cut_a in 0..bytes.len() {
            for cut_b in cut_a..bytes.len() {
                let parts = [&bytes[..cut_a], &bytes[cut_a..cut_b], &bytes[cut_b..]];
                assert_eq!(parse_in(&parts), whole, "cuts at {cut_a} and {cut_b}");
            }
        }
    }

    #[test]
    fn byte_by_byte_matches() {
        let bytes = STREAM.as_bytes();
        let chunks: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(parse_in(&chunks), parse_in(&[bytes]));
    }

    #[test]
    fn byte_order_mark_and_empty_data_are_skipped() {
        let events = parse_in(&[b"\xEF\xBB", b"\xBFdata: one\n\ndata:\n\ndata: two\n\n"]);
        assert_eq!(events.iter().map(|e| e.data.as_str()).collect::<Vec<_>>(), ["one", "two"]);
    }

    #[test]
    fn last_event_without_blank_line_is_kept() {
        let events = parse_in(&[b"data: tail"]);
        assert_eq!(events, vec![SseEvent { event: None, data: "tail".into() }]);
    }
}
