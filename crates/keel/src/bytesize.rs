//! Sizes written in `keel.toml`: `1048576`, `100B`, `512KB`, `10MB`, `1GB` (powers of 1000) or
//! `512KiB`, `10MiB`, `1GiB` (powers of 1024). Each section that takes a size sets its own range.

/// The size `text` names, in bytes; `None` when it is not a number with one of the units above,
/// or does not fit in a `u64`.
pub fn parse(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => return None,
    };
    number.parse::<u64>().ok()?.checked_mul(factor)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn reads_decimal_and_binary_units() {
        assert_eq!(parse("50MB"), Some(50_000_000));
        assert_eq!(parse("512KiB"), Some(524_288));
        assert_eq!(parse("100"), Some(100));
        assert_eq!(parse(" 1 GiB "), Some(1 << 30));
        for bad in [
            "",
            "MB",
            "1.5MB",
            "-1",
            "10 parsecs",
            "99999999999999999999GB",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
