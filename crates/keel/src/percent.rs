//! Percent-encoding (RFC 3986) for URL parts Keel builds or reads: credentials in database URLs,
//! path segments of provider APIs. The `percent-encoding` crate does the work; this names the
//! one set Keel encodes with.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};

/// Everything but RFC 3986's unreserved characters (`A–Z a–z 0–9 - . _ ~`).
const RESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Every byte but the unreserved ones as `%XX`.
pub fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, RESERVED).to_string()
}

/// `%XX` sequences decoded; a `%` not followed by two hex digits is kept as it is. Invalid UTF-8
/// after decoding is replaced, never an error.
pub fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::{decode, encode};

    #[test]
    fn round_trips_and_keeps_stray_percents() {
        let id = "$RCAnonymousID:a b/c%~.-_";
        assert_eq!(encode(id), "%24RCAnonymousID%3Aa%20b%2Fc%25~.-_");
        assert_eq!(decode(&encode(id)), id);
        assert_eq!(decode("a%2"), "a%2");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%41b"), "Ab");
        assert_eq!(decode("p%40ss"), "p@ss");
        assert_eq!(decode("%FF"), "\u{FFFD}");
    }
}
