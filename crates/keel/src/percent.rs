//! Percent-encoding (RFC 3986) for URL parts Keel builds or reads: credentials in database and
//! Redis URLs, path segments of provider APIs.

/// Every byte but the unreserved ones (`A–Z a–z 0–9 - . _ ~`) as `%XX`.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `%XX` sequences decoded; a `%` not followed by two hex digits is kept as it is. Invalid UTF-8
/// after decoding is replaced, never an error.
pub fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::{decode, encode};

    #[test]
    fn round_trips_and_keeps_stray_percents() {
        let id = "$RCAnonymousID:a b/c%";
        assert_eq!(encode(id), "%24RCAnonymousID%3Aa%20b%2Fc%25");
        assert_eq!(decode(&encode(id)), id);
        assert_eq!(decode("a%2"), "a%2");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%41b"), "Ab");
        assert_eq!(decode("p%40ss"), "p@ss");
    }
}
