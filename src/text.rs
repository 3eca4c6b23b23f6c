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

/// [`sanitize_text`] for a shared text: the same text (not a copy) when it needs no change.
pub fn sanitized(t: Text) -> Text {
    let clean = t.len() <= MAX_TEXT_LEN && !t.chars().any(char::is_control);
    if clean {
        t
    } else {
        Text::from(sanitize_text(t.as_bytes()))
    }
}

/// A text that is shared, never copied: a short text held inline, a static string, or a
/// reference-counted one. Node ids, reasons, decision makers and the names in audit snapshots
/// are `Text`, so recording an audit entry or copying a snapshot copies two words or bumps a
/// reference count, and never allocates.
///
/// It compares, orders and hashes as the string it holds, dereferences to `str`, and
/// (de)serialises as a plain JSON string. It is two words, like `&str` (a million nodes keep
/// several each), and `Option<Text>` is two words as well.
///
/// Conversions say what they cost: `From<&'static str>` and [`Text::from_static`] copy nothing;
/// [`Text::new`] and `From<String>` copy a text of up to [`Text::INLINE`] bytes into the value
/// itself (node and container ids usually are that short) and anything longer into one shared
/// allocation.
#[repr(C)]
pub struct Text {
    /// Static and shared: the first byte of the string (a static string's, or the data of an
    /// `Arc<str>`). Inline: the first bytes of the text.
    ptr: std::ptr::NonNull<u8>,
    /// Static and shared: the length in bytes, with the kind in the top two bits. Inline: the
    /// rest of the text, with the kind and length in the last byte.
    len: usize,
}

/// The kind bits of [`Text::len`]. No string is that long (allocations are at most
/// `isize::MAX` bytes), so the two top bits are free. The last byte of an inline text in
/// memory is the top byte of `len` (little-endian, which every target of this crate is).
const KIND: usize = 0b11 << (usize::BITS - 2);
const SHARED: usize = 0b10 << (usize::BITS - 2);
const INLINE: usize = 0b01 << (usize::BITS - 2);
const INLINE_TAG: u8 = 0b0100_0000;
const WORDS: usize = 2 * std::mem::size_of::<usize>();

const _: () = assert!(
    cfg!(target_endian = "little"),
    "Text keeps an inline text's length in the last byte of its length word"
);

// SAFETY: a `Text` holds inline bytes, a `&'static str` or an `Arc<str>`, all `Send` and `Sync`;
// the reference count is only changed through `Arc`'s atomic operations.
unsafe impl Send for Text {}
// SAFETY: as above.
unsafe impl Sync for Text {}

impl Text {
    /// The longest text held inline (15 bytes on 64-bit targets).
    pub const INLINE: usize = WORDS - 1;

    /// The empty text (no allocation).
    pub const EMPTY: Text = Text::from_static("");

    /// A static text (no allocation).
    pub const fn from_static(s: &'static str) -> Text {
        Text {
            // SAFETY: a reference is never null (an empty string's pointer is dangling but
            // non-null).
            ptr: unsafe { std::ptr::NonNull::new_unchecked(s.as_ptr() as *mut u8) },
            len: s.len(),
        }
    }

    /// A text holding a copy of `s`: inline if it is short, else in a shared allocation (the
    /// empty string allocates nothing).
    pub fn new(s: &str) -> Text {
        if s.is_empty() {
            return Text::EMPTY;
        }
        if let Some(t) = Text::inline(s) {
            return t;
        }
        let arc: std::sync::Arc<str> = s.into();
        let len = arc.len();
        let raw = std::sync::Arc::into_raw(arc) as *const u8 as *mut u8;
        Text {
            // SAFETY: `Arc::into_raw` never returns null.
            ptr: unsafe { std::ptr::NonNull::new_unchecked(raw) },
            len: len | SHARED,
        }
    }

    /// `s` held inline, if it can be: at most [`Text::INLINE`] bytes, not empty, and a first
    /// byte that is not NUL (the first word is then never all zeros, which keeps
    /// `Option<Text>` two words).
    #[inline]
    fn inline(s: &str) -> Option<Text> {
        let bytes = s.as_bytes();
        if bytes.is_empty() || bytes.len() > Self::INLINE || bytes[0] == 0 {
            return None;
        }
        let mut raw = copy_short(bytes);
        raw[WORDS - 1] = INLINE_TAG | bytes.len() as u8;
        // SAFETY: `Text` is `repr(C)` of two words, 2 * size_of::<usize>() bytes without
        // padding; the first word is non-zero (its first byte is), so it is a valid `NonNull`
        // value (without provenance: it is never dereferenced as a pointer).
        Some(unsafe { std::mem::transmute::<[u8; WORDS], Text>(raw) })
    }

    fn kind(&self) -> usize {
        self.len & KIND
    }

    /// The `Arc<str>` pointer of a shared text.
    fn raw_arc(&self) -> *const str {
        std::ptr::slice_from_raw_parts(self.ptr.as_ptr() as *const u8, self.len & !KIND)
            as *const str
    }

    pub fn as_str(&self) -> &str {
        let (ptr, len) = if self.kind() == INLINE {
            let len = ((self.len >> (usize::BITS - 8)) as u8 & !INLINE_TAG) as usize;
            (self as *const Text as *const u8, len)
        } else {
            (self.ptr.as_ptr() as *const u8, self.len & !KIND)
        };
        // SAFETY: `ptr` and `len` describe valid UTF-8 that lives as long as `self`: bytes
        // inside `self` (copied from a `str`), a static string, or the data of an `Arc<str>`
        // this text holds a count of.
        unsafe { std::str::from_utf8_unchecked(std::slice::from_raw_parts(ptr, len)) }
    }

    /// Whether two texts are the same value: the same allocation or static string, or equal
    /// inline bytes.
    pub fn ptr_eq(a: &Text, b: &Text) -> bool {
        a.ptr == b.ptr && a.len == b.len
    }

    /// Whether the text is held in the value itself (no allocation, no reference count).
    pub fn is_inline(&self) -> bool {
        self.kind() == INLINE
    }
}

/// `bytes` (at most [`Text::INLINE`] long) at the start of zeroed words, copied with
/// fixed-size moves: a variable-length copy would be a call to `memcpy`, the largest cost of
/// making a short text.
#[inline]
fn copy_short(bytes: &[u8]) -> [u8; WORDS] {
    let n = bytes.len();
    debug_assert!(n < WORDS);
    let mut raw = [0u8; WORDS];
    // Two overlapping reads cover every byte (the same trick as the hash).
    if n >= 8 {
        raw[..8].copy_from_slice(&bytes[..8]);
        raw[n - 8..n].copy_from_slice(&bytes[n - 8..]);
    } else if n >= 4 {
        raw[..4].copy_from_slice(&bytes[..4]);
        raw[n - 4..n].copy_from_slice(&bytes[n - 4..]);
    } else if n > 0 {
        raw[0] = bytes[0];
        raw[n / 2] = bytes[n / 2];
        raw[n - 1] = bytes[n - 1];
    }
    raw
}

impl Clone for Text {
    fn clone(&self) -> Text {
        if self.kind() == SHARED {
            // SAFETY: this text holds a count of the `Arc<str>` at `raw_arc`; the new text
            // takes one more.
            unsafe { std::sync::Arc::increment_strong_count(self.raw_arc()) };
        }
        Text {
            ptr: self.ptr,
            len: self.len,
        }
    }
}

impl Drop for Text {
    fn drop(&mut self) {
        if self.kind() == SHARED {
            // SAFETY: this text holds a count of the `Arc<str>` at `raw_arc` and gives it back.
            drop(unsafe { std::sync::Arc::from_raw(self.raw_arc()) });
        }
    }
}

/// A string to find among texts: when it is short enough to be held inline, a comparison with
/// an inline text is two word comparisons instead of a length check and a `memcmp` (ids are
/// compared on every lookup of every event).
pub(crate) struct Key<'a> {
    s: &'a str,
    inline: Option<Text>,
}

impl<'a> Key<'a> {
    #[inline]
    pub(crate) fn new(s: &'a str) -> Key<'a> {
        Key {
            s,
            inline: Text::inline(s),
        }
    }

    #[inline]
    pub(crate) fn matches(&self, t: &Text) -> bool {
        match &self.inline {
            // Inline texts are equal exactly when their two words are; an inline key never
            // equals a text held any other way unless the strings are equal, checked below.
            Some(k) if t.is_inline() => Text::ptr_eq(k, t),
            _ => t.as_str() == self.s,
        }
    }

    pub(crate) fn as_str(&self) -> &'a str {
        self.s
    }
}

impl Default for Text {
    fn default() -> Self {
        Text::EMPTY
    }
}

impl std::ops::Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl std::borrow::Borrow<str> for Text {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl From<&'static str> for Text {
    fn from(s: &'static str) -> Text {
        Text::from_static(s)
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        Text::new(&s)
    }
}

impl From<&String> for Text {
    fn from(s: &String) -> Text {
        Text::new(s)
    }
}

impl From<&Text> for Text {
    fn from(t: &Text) -> Text {
        t.clone()
    }
}

impl From<Text> for String {
    fn from(t: Text) -> String {
        t.as_str().to_owned()
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Text) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Text {}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Text {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<Text> for str {
    fn eq(&self, other: &Text) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<Text> for &str {
    fn eq(&self, other: &Text) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<Text> for String {
    fn eq(&self, other: &Text) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialOrd for Text {
    fn partial_cmp(&self, other: &Text) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Text {
    fn cmp(&self, other: &Text) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl std::hash::Hash for Text {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.as_str().hash(h)
    }
}

impl std::fmt::Display for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl serde::Serialize for Text {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Text, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(Text::new(&s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_shared_and_behave_as_strings() {
        let a = Text::from("worker-1");
        let b = a.clone();
        assert_eq!(a, b);
        assert_eq!(a, "worker-1");
        assert_eq!("worker-1", a);
        assert_eq!(a, String::from("worker-1"));
        assert!(a.starts_with("worker"));
        assert_eq!(Text::from(""), Text::EMPTY);
        assert_eq!(Text::from_static("x"), Text::from("x"));
        let (a1, b1) = (Text::new("a"), Text::new("b"));
        assert!(a1 < b1);
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"worker-1\"");
        let back: Text = serde_json::from_str("\"w\\u00e9\"").unwrap();
        assert_eq!(back, "wé");
        let mut m = std::collections::HashMap::new();
        m.insert(a.clone(), 1);
        assert_eq!(m.get("worker-1"), Some(&1), "looked up by &str");
        assert_eq!(format!("{a} {a:?}"), "worker-1 \"worker-1\"");
    }

    #[test]
    fn a_text_is_two_words_and_counts_its_references() {
        assert_eq!(
            std::mem::size_of::<Text>(),
            2 * std::mem::size_of::<usize>()
        );
        assert_eq!(
            std::mem::size_of::<Option<Text>>(),
            std::mem::size_of::<Text>()
        );
        let owned = Text::new("a conductor, longer than inline");
        let copies: Vec<Text> = (0..3).map(|_| owned.clone()).collect();
        assert!(copies
            .iter()
            .all(|c| Text::ptr_eq(c, &owned) && *c == "a conductor, longer than inline"));
        assert!(!owned.is_inline());
        drop(owned);
        assert_eq!(
            copies[2], "a conductor, longer than inline",
            "the last copies keep the text alive"
        );
        drop(copies);
        let s = Text::from_static("static");
        assert!(Text::ptr_eq(&s, &s.clone()));
        assert_eq!(Text::new(""), Text::EMPTY);
        assert!(Text::EMPTY.is_empty());
        let from_string = Text::from(String::from("moved"));
        assert_eq!(from_string.as_str(), "moved");
        // Sent to and dropped on another thread (the fleet's texts cross threads).
        // Inline texts: every length up to the limit, multi-byte characters, a NUL after the
        // first byte; a NUL first byte goes to the heap (the first word must not be zero).
        for s in [
            "a",
            "node-00000042",
            "123456789012345",
            "é",
            "grüße-äöü",
            "a\0b",
            "\0x",
        ] {
            let t = Text::new(s);
            assert_eq!(t.as_str(), s);
            assert_eq!(
                t.is_inline(),
                s.len() <= Text::INLINE && !s.starts_with('\0'),
                "{s:?}"
            );
            assert_eq!(t.clone(), t);
            assert!(Some(t.clone()).is_some());
        }
        assert!(
            !Text::new("1234567890123456").is_inline(),
            "16 bytes is too long"
        );
        let t = Text::new("thread, long enough to be shared");
        let u = t.clone();
        std::thread::spawn(move || assert_eq!(u, "thread, long enough to be shared"))
            .join()
            .unwrap();
        assert_eq!(t, "thread, long enough to be shared");
    }

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
