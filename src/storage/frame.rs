//! The on-disk frame: every record is checksummed and self-describing, and a reader tells an
//! incomplete last frame (a torn write) from damage anywhere else.
//!
//! ```text
//! offset size field
//!      0    4 magic "NLF2"
//!      4    1 kind (header, full record, first/middle/last fragment, end)
//!      5    3 reserved (0)
//!      8    4 payload length (at most MAX_PAYLOAD)
//!     12    8 generation of the file the frame belongs to
//!     20    8 sequence number (journal: the mutation's LSN; snapshot: the record's index)
//!     28    4 CRC-32 of the payload
//!     32    4 CRC-32 of bytes 0..32
//!     36    - payload
//! ```
//!
//! The header has its own checksum, so a damaged length can never make a complete frame look
//! incomplete. A record larger than [`MAX_PAYLOAD`] is split into fragments that share one
//! sequence number: writer and reader have the same limit, and no record the API accepts is
//! too large to be written and read back.

/// Bytes before the payload.
pub const HEADER_LEN: usize = 36;
/// The largest payload of one frame; larger records are fragmented.
pub const MAX_PAYLOAD: usize = 1 << 20;
const MAGIC: [u8; 4] = *b"NLF2";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// The first frame of every file: what the file is.
    Header = 1,
    /// A whole record.
    Full = 2,
    First = 3,
    Middle = 4,
    Last = 5,
    /// The last frame of a snapshot: how many records it holds.
    End = 6,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Header,
            2 => Kind::Full,
            3 => Kind::First,
            4 => Kind::Middle,
            5 => Kind::Last,
            6 => Kind::End,
            _ => return None,
        })
    }
}

// ----- CRC-32 (IEEE 802.3, as zlib) ---------------------------------------------------------

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

static CRC_TABLE: [u32; 256] = crc_table();

pub fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for b in data {
        c = CRC_TABLE[((c ^ *b as u32) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

// ----- writing -------------------------------------------------------------------------------

fn put_frame(out: &mut Vec<u8>, kind: Kind, generation: u64, seq: u64, payload: &[u8]) {
    let start = out.len();
    out.extend_from_slice(&MAGIC);
    out.push(kind as u8);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&generation.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&crc32(payload).to_le_bytes());
    let header_crc = crc32(&out[start..start + 32]);
    out.extend_from_slice(&header_crc.to_le_bytes());
    out.extend_from_slice(payload);
}

/// Appends `payload` as one record: a single frame, or fragments of at most [`MAX_PAYLOAD`].
pub fn put_record(out: &mut Vec<u8>, generation: u64, seq: u64, payload: &[u8]) {
    if payload.len() <= MAX_PAYLOAD {
        put_frame(out, Kind::Full, generation, seq, payload);
        return;
    }
    let chunks: Vec<&[u8]> = payload.chunks(MAX_PAYLOAD).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let kind = match i {
            0 => Kind::First,
            i if i + 1 == chunks.len() => Kind::Last,
            _ => Kind::Middle,
        };
        put_frame(out, kind, generation, seq, chunk);
    }
}

/// Appends a file's header frame.
pub fn put_header(out: &mut Vec<u8>, generation: u64, payload: &[u8]) {
    put_frame(out, Kind::Header, generation, 0, payload);
}

/// Appends a snapshot's end frame.
pub fn put_end(out: &mut Vec<u8>, generation: u64, records: u64) {
    put_frame(out, Kind::End, generation, records, b"");
}

// ----- reading -------------------------------------------------------------------------------

/// One record read back (fragments joined).
#[derive(Debug, PartialEq, Eq)]
pub enum Item {
    Header {
        generation: u64,
        payload: Vec<u8>,
    },
    Record {
        seq: u64,
        payload: Vec<u8>,
        offset: u64,
    },
    End {
        records: u64,
    },
}

/// Why reading stopped before the end of the file.
#[derive(Debug, PartialEq, Eq)]
pub enum Stop {
    /// An incomplete last record starting at `offset` (a torn write): everything from there on
    /// was never acknowledged.
    Torn { offset: u64 },
    /// Damage at `offset`.
    Corrupt { offset: u64, detail: String },
}

/// One frame as read: kind, sequence number, payload, and where it starts.
type RawFrame = (Kind, u64, Vec<u8>, u64);

/// Reads records from a stream of frames, checking every checksum, the generation of every
/// frame, and that fragments are complete and in order.
pub struct Reader<R> {
    r: R,
    /// Bytes of the file not yet consumed.
    remaining: u64,
    pos: u64,
    generation: Option<u64>,
}

impl<R: std::io::Read> Reader<R> {
    pub fn new(r: R, file_len: u64) -> Self {
        Reader {
            r,
            remaining: file_len,
            pos: 0,
            generation: None,
        }
    }

    /// The offset of the next unread byte.
    pub fn position(&self) -> u64 {
        self.pos
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), Stop> {
        self.r.read_exact(buf).map_err(|e| Stop::Corrupt {
            offset: self.pos,
            detail: format!("read failed: {e}"),
        })?;
        self.pos += buf.len() as u64;
        self.remaining -= buf.len() as u64;
        Ok(())
    }

    /// Whether every byte from here to the end is zero (a file extended but never written, as
    /// some file systems leave after a power loss): a torn tail, not damage.
    fn rest_is_zero(&mut self, already: &[u8]) -> Result<bool, Stop> {
        if already.iter().any(|b| *b != 0) {
            return Ok(false);
        }
        let mut buf = [0u8; 8192];
        while self.remaining > 0 {
            let n = buf.len().min(self.remaining as usize);
            self.read_exact(&mut buf[..n])?;
            if buf[..n].iter().any(|b| *b != 0) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Reads one frame, `(kind, sequence number, payload, offset)`: `Ok(None)` at a clean end
    /// of the file.
    fn frame(&mut self) -> Result<Option<RawFrame>, Stop> {
        let offset = self.pos;
        if self.remaining == 0 {
            return Ok(None);
        }
        if self.remaining < HEADER_LEN as u64 {
            let mut rest = vec![0u8; self.remaining as usize];
            self.read_exact(&mut rest)?;
            return Err(Stop::Torn { offset });
        }
        let mut h = [0u8; HEADER_LEN];
        self.read_exact(&mut h)?;
        let header_crc = u32::from_le_bytes(h[32..36].try_into().expect("4 bytes"));
        if h[0..4] != MAGIC || crc32(&h[..32]) != header_crc {
            if self.rest_is_zero(&h)? {
                return Err(Stop::Torn { offset });
            }
            return Err(Stop::Corrupt {
                offset,
                detail: "frame header checksum mismatch".into(),
            });
        }
        let kind = Kind::from_u8(h[4]).ok_or_else(|| Stop::Corrupt {
            offset,
            detail: format!("unknown frame kind {}", h[4]),
        })?;
        let len = u32::from_le_bytes(h[8..12].try_into().expect("4 bytes")) as usize;
        let generation = u64::from_le_bytes(h[12..20].try_into().expect("8 bytes"));
        let seq = u64::from_le_bytes(h[20..28].try_into().expect("8 bytes"));
        let crc = u32::from_le_bytes(h[28..32].try_into().expect("4 bytes"));
        if len > MAX_PAYLOAD {
            return Err(Stop::Corrupt {
                offset,
                detail: format!("frame length {len} exceeds the maximum {MAX_PAYLOAD}"),
            });
        }
        match self.generation {
            None => self.generation = Some(generation),
            Some(g) if g != generation => {
                return Err(Stop::Corrupt {
                    offset,
                    detail: format!("frame of generation {generation} in a file of generation {g}"),
                })
            }
            Some(_) => {}
        }
        if (len as u64) > self.remaining {
            let mut rest = vec![0u8; self.remaining as usize];
            self.read_exact(&mut rest)?;
            return Err(Stop::Torn { offset });
        }
        let mut payload = vec![0u8; len];
        self.read_exact(&mut payload)?;
        if crc32(&payload) != crc {
            return Err(Stop::Corrupt {
                offset,
                detail: "payload checksum mismatch".into(),
            });
        }
        Ok(Some((kind, seq, payload, offset)))
    }

    /// The next record (fragments joined); `Ok(None)` at a clean end.
    pub fn next_item(&mut self) -> Result<Option<Item>, Stop> {
        let Some((kind, seq, payload, offset)) = self.frame()? else {
            return Ok(None);
        };
        match kind {
            Kind::Header => Ok(Some(Item::Header {
                generation: self.generation.expect("set by frame"),
                payload,
            })),
            Kind::End => Ok(Some(Item::End { records: seq })),
            Kind::Full => Ok(Some(Item::Record {
                seq,
                payload,
                offset,
            })),
            Kind::First => {
                let mut all = payload;
                loop {
                    let next = match self.frame() {
                        Ok(Some(f)) => f,
                        // The record is incomplete: it was being written when the writer died.
                        Ok(None) | Err(Stop::Torn { .. }) => return Err(Stop::Torn { offset }),
                        Err(e) => return Err(e),
                    };
                    let (k, s, p, at) = next;
                    if s != seq || !matches!(k, Kind::Middle | Kind::Last) {
                        return Err(Stop::Corrupt {
                            offset: at,
                            detail: format!(
                                "fragment of record {seq} expected, found {k:?} of {s}"
                            ),
                        });
                    }
                    all.extend_from_slice(&p);
                    if k == Kind::Last {
                        return Ok(Some(Item::Record {
                            seq,
                            payload: all,
                            offset,
                        }));
                    }
                }
            }
            Kind::Middle | Kind::Last => Err(Stop::Corrupt {
                offset,
                detail: format!("fragment {kind:?} of record {seq} without its first fragment"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(data: &[u8]) -> (Vec<Item>, Option<Stop>) {
        let mut r = Reader::new(data, data.len() as u64);
        let mut items = Vec::new();
        loop {
            match r.next_item() {
                Ok(Some(i)) => items.push(i),
                Ok(None) => return (items, None),
                Err(s) => return (items, Some(s)),
            }
        }
    }

    fn sample() -> Vec<u8> {
        let mut buf = Vec::new();
        put_header(&mut buf, 3, b"{\"h\":1}");
        put_record(&mut buf, 3, 1, b"one");
        put_record(&mut buf, 3, 2, b"two");
        buf
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn frames_round_trip() {
        let buf = sample();
        let (items, stop) = read_all(&buf);
        assert_eq!(stop, None);
        assert_eq!(items.len(), 3);
        assert_eq!(
            items[2],
            Item::Record {
                seq: 2,
                payload: b"two".to_vec(),
                offset: (2 * HEADER_LEN + 7 + 3) as u64
            }
        );
    }

    #[test]
    fn large_records_are_fragmented_and_joined() {
        let mut buf = Vec::new();
        let big: Vec<u8> = (0..(2 * MAX_PAYLOAD + 17)).map(|i| i as u8).collect();
        put_record(&mut buf, 1, 9, &big);
        put_record(&mut buf, 1, 10, b"after");
        let (items, stop) = read_all(&buf);
        assert_eq!(stop, None);
        assert!(matches!(&items[0], Item::Record { seq: 9, payload, .. } if *payload == big));
        // Cut inside the third fragment: the whole record is torn, from its first fragment.
        let cut = &buf[..2 * (HEADER_LEN + MAX_PAYLOAD) + 5];
        assert_eq!(read_all(cut).1, Some(Stop::Torn { offset: 0 }));
    }

    #[test]
    fn only_an_incomplete_last_frame_is_torn() {
        let buf = sample();
        let last = buf.len() - (HEADER_LEN + 3);
        for cut in last + 1..buf.len() {
            let (items, stop) = read_all(&buf[..cut]);
            assert_eq!(items.len(), 2, "cut at {cut}");
            assert_eq!(
                stop,
                Some(Stop::Torn {
                    offset: last as u64
                }),
                "cut at {cut}"
            );
        }
        // A zero-filled tail is torn too.
        let mut zeros = buf.clone();
        zeros.extend_from_slice(&[0u8; 100]);
        assert_eq!(
            read_all(&zeros).1,
            Some(Stop::Torn {
                offset: buf.len() as u64
            })
        );
    }

    #[test]
    fn every_single_bit_flip_is_detected_as_damage() {
        let buf = sample();
        for i in 0..buf.len() {
            for bit in 0..8 {
                let mut bad = buf.clone();
                bad[i] ^= 1 << bit;
                let (items, stop) = read_all(&bad);
                match stop {
                    Some(Stop::Corrupt { .. }) => {}
                    other => panic!("byte {i} bit {bit}: {other:?} after {} items", items.len()),
                }
            }
        }
    }

    #[test]
    fn a_frame_from_another_generation_is_damage() {
        let mut buf = Vec::new();
        put_header(&mut buf, 3, b"h");
        put_record(&mut buf, 4, 1, b"x");
        assert!(
            matches!(read_all(&buf).1, Some(Stop::Corrupt { detail, .. }) if detail.contains("generation 4"))
        );
    }
}
