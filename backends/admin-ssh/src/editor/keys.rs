//! Decoding the bytes a terminal sends into keys: control characters, CSI and SS3 escape
//! sequences, and UTF-8 characters, each possibly split across chunks.

/// A decoded key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Key {
    Char(char),
    /// `\r`, or `ESC O M` (keypad Enter).
    Cr,
    /// `\n`; right after `\r` it is the second half of the same Enter.
    Lf,
    Backspace,
    Delete,
    Interrupt,
    CtrlD,
    KillLine,
    KillToEnd,
    Home,
    End,
    Left,
    Right,
    Up,
    Down,
    Tab,
    /// Ctrl-L.
    Redraw,
    /// Ctrl-R.
    ReverseSearch,
    /// Ctrl-G (leaves a reverse search).
    Abort,
    Yank,
    Ignored,
}

/// Decodes one key from the start of `bytes`: `Some((key, bytes used))`, or `None` when the
/// bytes are an incomplete sequence (or empty) and more input is needed.
pub(super) fn decode(bytes: &[u8]) -> Option<(Key, usize)> {
    let first = *bytes.first()?;
    let key = match first {
        0x1b => return decode_escape(bytes),
        b'\r' => Key::Cr,
        b'\n' => Key::Lf,
        0x7f | 0x08 => Key::Backspace,
        0x03 => Key::Interrupt,
        0x04 => Key::CtrlD,
        0x15 => Key::KillLine,
        0x0b => Key::KillToEnd,
        0x01 => Key::Home,
        0x05 => Key::End,
        0x02 => Key::Left,
        0x06 => Key::Right,
        0x10 => Key::Up,
        0x0e => Key::Down,
        0x09 => Key::Tab,
        0x0c => Key::Redraw,
        0x12 => Key::ReverseSearch,
        0x07 => Key::Abort,
        0x19 => Key::Yank,
        0x00..=0x1f => Key::Ignored,
        0x20..=0x7e => Key::Char(char::from(first)),
        _ => return decode_utf8(bytes),
    };
    Some((key, 1))
}

fn decode_utf8(bytes: &[u8]) -> Option<(Key, usize)> {
    let first = *bytes.first()?;
    let len = match first {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        // A stray continuation byte or an invalid lead byte: drop it.
        _ => return Some((Key::Ignored, 1)),
    };
    let Some(seq) = bytes.get(..len) else {
        // Wait for the rest, unless what is there already cannot be a continuation.
        let valid_so_far = bytes.iter().skip(1).all(|b| b & 0xc0 == 0x80);
        return (!valid_so_far).then_some((Key::Ignored, 1));
    };
    match std::str::from_utf8(seq).ok().and_then(|s| s.chars().next()) {
        Some(c) if !c.is_control() => Some((Key::Char(c), len)),
        _ => Some((Key::Ignored, 1)),
    }
}

fn decode_escape(bytes: &[u8]) -> Option<(Key, usize)> {
    match bytes.get(1)? {
        b'[' => {
            // CSI: parameter and intermediate bytes, then one final byte 0x40-0x7e.
            let rest = bytes.get(2..)?;
            let end = rest.iter().position(|b| (0x40..=0x7e).contains(b))?;
            let params = rest.get(..end).unwrap_or_default();
            let final_byte = rest.get(end).copied().unwrap_or(0);
            let key = match (params, final_byte) {
                (b"", b'A') => Key::Up,
                (b"", b'B') => Key::Down,
                (b"", b'C') => Key::Right,
                (b"", b'D') => Key::Left,
                (b"", b'H') | (b"1", b'~') | (b"7", b'~') => Key::Home,
                (b"", b'F') | (b"4", b'~') | (b"8", b'~') => Key::End,
                (b"3", b'~') => Key::Delete,
                _ => Key::Ignored,
            };
            Some((key, 2 + end + 1))
        }
        b'O' => {
            let key = match bytes.get(2)? {
                b'A' => Key::Up,
                b'B' => Key::Down,
                b'C' => Key::Right,
                b'D' => Key::Left,
                b'H' => Key::Home,
                b'F' => Key::End,
                b'M' => Key::Cr,
                _ => Key::Ignored,
            };
            Some((key, 3))
        }
        // ESC followed by anything else (Alt-key): ignore the pair.
        _ => Some((Key::Ignored, 2)),
    }
}
