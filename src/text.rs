//! What text the library accepts, and how it makes any text safe to record.
//!
//! Names (node, container, hold, cordon, label keys, `decision_by`) are identifiers the caller
//! chooses: they are checked and refused when invalid. Free texts that describe what happened
//! (a provider's error, a cordon's reason) come from systems the caller does not control and
//! must never prevent a decision from being audited: they are *sanitised*, never refused, so
//! that every text the core accepts can be stored by every sink (a PostgreSQL `text` column
//! refuses NUL).

use crate::error::{Error, Result};
use std::fmt::Write as _;

/// The longest name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 256;
/// The longest detail (hold detail, label value) accepted, in bytes.
pub const MAX_DETAIL_LEN: usize = 1024;
/// The longest free text recorded, in bytes, including the truncation marker.
pub const MAX_TEXT_LEN: usize = 4096;

/// Checks a caller-chosen name: not empty, at most [`MAX_NAME_LEN`] bytes, no control
/// characters.
pub fn validate_name(what: &str, s: &str) -> Result<()> {
    if s.is_empty() {
        return Err(Error::InvalidArgument(format!("{what} must not be empty")));
    }
    if s.len() > MAX_NAME_LEN {
        return Err(Error::InvalidArgument(format!(
            "{what} is {} bytes long; the maximum is {MAX_NAME_LEN}",
            s.len()
        )));
    }
    if s.chars().any(char::is_control) {
        return Err(Error::InvalidArgument(format!(
            "{what} {:?} contains control characters",
            sanitize_text(s.as_bytes())
        )));
    }
    Ok(())
}

/// Checks a caller-chosen detail (may be empty): at most [`MAX_DETAIL_LEN`] bytes, no control
/// characters.
pub fn validate_detail(what: &str, s: &str) -> Result<()> {
    if s.len() > MAX_DETAIL_LEN {
        return Err(Error::InvalidArgument(format!(
            "{what} is {} bytes long; the maximum is {MAX_DETAIL_LEN}",
            s.len()
        )));
    }
    if s.chars().any(char::is_control) {
        return Err(Error::InvalidArgument(format!(
            "{what} contains control characters"
        )));
    }
    Ok(())
}

/// Makes any bytes recordable: invalid UTF-8 is replaced (U+FFFD), NUL and every other control
/// character is escaped (`\x00`, `\u{85}`), and the result is at most [`MAX_TEXT_LEN`] bytes,
/// ending in a marker that says how long the original was when it had to be cut.
pub fn sanitize_text(bytes: &[u8]) -> String {
    let lossy = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(lossy.len().min(MAX_TEXT_LEN));
    for c in lossy.chars() {
        if c.is_control() {
            if (c as u32) < 0x80 {
                let _ = write!(out, "\\x{:02x}", c as u32);
            } else {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        } else {
            out.push(c);
        }
        if out.len() > MAX_TEXT_LEN {
            break;
        }
    }
    if out.len() <= MAX_TEXT_LEN {
        return out;
    }
    let marker = format!(" [truncated: {} bytes in all]", bytes.len());
    let mut cut = MAX_TEXT_LEN - marker.len();
    while !out.is_char_boundary(cut) {
        cut -= 1;
    }
    out.truncate(cut);
    out.push_str(&marker);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(validate_name("node id", "worker-1").is_ok());
        for (bad, needle) in [
            ("", "must not be empty"),
            ("a\0b", "control characters"),
            ("a\nb", "control characters"),
        ] {
            match validate_name("node id", bad) {
                Err(Error::InvalidArgument(m)) => assert!(m.contains(needle), "{m}"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        let long = "x".repeat(MAX_NAME_LEN + 1);
        assert!(
            matches!(validate_name("n", &long), Err(Error::InvalidArgument(m)) if m.contains("257 bytes"))
        );
        assert!(validate_name("n", &"x".repeat(MAX_NAME_LEN)).is_ok());
    }

    #[test]
    fn any_bytes_become_a_bounded_clean_text() {
        assert_eq!(sanitize_text(b"plain"), "plain");
        assert_eq!(sanitize_text(b"a\0b\nc\x7f"), "a\\x00b\\x0ac\\x7f");
        assert_eq!(sanitize_text(&[0x66, 0xff, 0x6f]), "f\u{fffd}o");
        assert_eq!(sanitize_text("x\u{85}y".as_bytes()), "x\\u{85}y");
        assert_eq!(sanitize_text(b""), "");
        let huge = vec![b'e'; 100_000];
        let s = sanitize_text(&huge);
        assert_eq!(s.len(), MAX_TEXT_LEN);
        assert!(
            s.ends_with(" [truncated: 100000 bytes in all]"),
            "{}",
            &s[4000..]
        );
        // Multi-byte characters are never cut in half.
        let wide = "é".repeat(5000);
        let s = sanitize_text(wide.as_bytes());
        assert!(s.len() <= MAX_TEXT_LEN);
        assert!(s.contains("[truncated: 10000 bytes in all]"));
        // Escapes that push the text over the bound are cut too.
        let s = sanitize_text(&vec![0u8; 5000]);
        assert!(s.len() <= MAX_TEXT_LEN && s.starts_with("\\x00\\x00"));
        assert!(!s.contains('\0'));
    }
}
