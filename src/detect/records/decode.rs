//! Compressed answers are read too: gzip, deflate and br are decoded as they stream, for
//! counting only (the browser still gets the portal's bytes). Input goes in small slices so
//! a small chunk that inflates to gigabytes never sits in memory at once, and decoding stops
//! at a total (counted by size past it).

use std::io::Write;

/// Input bytes decoded per step: a ratio of 1000:1 still yields at most ~1 MiB at once.
const STEP: usize = 1024;
/// Decoded bytes read at most per answer.
pub const MAX_DECODED: u64 = 1 << 30;

pub enum Decoder {
    Gzip(flate2::write::MultiGzDecoder<Vec<u8>>),
    Deflate(flate2::write::ZlibDecoder<Vec<u8>>),
    Brotli(Box<brotli::DecompressorWriter<Vec<u8>>>),
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Decoder::Gzip(_) => "gzip",
            Decoder::Deflate(_) => "deflate",
            Decoder::Brotli(_) => "br",
        })
    }
}

/// What a `Content-Encoding` header asks for.
pub enum Encoding {
    Identity,
    Decoded(Box<Decoder>),
    /// An encoding (or a chain of them) not read here: the answer counts by its size.
    Unknown,
}

pub fn for_header(value: Option<&str>) -> Encoding {
    let codings: Vec<String> = value
        .unwrap_or("")
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty() && c != "identity")
        .collect();
    match codings.as_slice() {
        [] => Encoding::Identity,
        [one] => match one.as_str() {
            "gzip" | "x-gzip" => Encoding::Decoded(Box::new(Decoder::Gzip(
                flate2::write::MultiGzDecoder::new(Vec::new()),
            ))),
            "deflate" => Encoding::Decoded(Box::new(Decoder::Deflate(
                flate2::write::ZlibDecoder::new(Vec::new()),
            ))),
            "br" => Encoding::Decoded(Box::new(Decoder::Brotli(Box::new(
                brotli::DecompressorWriter::new(Vec::new(), 4096),
            )))),
            _ => Encoding::Unknown,
        },
        _ => Encoding::Unknown,
    }
}

impl Decoder {
    /// Decodes `chunk`, handing each decoded piece to `out`; an error means the stream is
    /// not what its header says.
    pub fn feed(&mut self, chunk: &[u8], out: &mut dyn FnMut(&[u8])) -> std::io::Result<()> {
        for slice in chunk.chunks(STEP) {
            let mut rest = slice;
            while !rest.is_empty() {
                let n = match self {
                    Decoder::Gzip(d) => d.write(rest)?,
                    Decoder::Deflate(d) => d.write(rest)?,
                    Decoder::Brotli(d) => d.write(rest)?,
                };
                if n == 0 {
                    return Err(std::io::ErrorKind::WriteZero.into());
                }
                rest = &rest[n..];
                self.drain(out);
            }
        }
        Ok(())
    }

    /// The stream ended: whatever the decoder still holds.
    pub fn finish(&mut self, out: &mut dyn FnMut(&[u8])) -> std::io::Result<()> {
        match self {
            Decoder::Gzip(d) => d.try_finish()?,
            Decoder::Deflate(d) => d.try_finish()?,
            Decoder::Brotli(d) => d.flush()?,
        }
        self.drain(out);
        Ok(())
    }

    fn drain(&mut self, out: &mut dyn FnMut(&[u8])) {
        let sink = match self {
            Decoder::Gzip(d) => d.get_mut(),
            Decoder::Deflate(d) => d.get_mut(),
            Decoder::Brotli(d) => d.get_mut(),
        };
        if !sink.is_empty() {
            let piece = std::mem::take(sink);
            out(&piece);
        }
    }
}
