//! Units for people.

/// Bytes in human units: `512 B`, `1.5 KiB`, `20.0 MiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Bytes in the largest binary unit that divides them exactly: `64 GiB`, `128 MiB`, `1000 B`,
/// for limits, which are round numbers people type back.
pub fn compact_size(bytes: u64) -> String {
    const UNITS: [(&str, u32); 5] = [
        ("PiB", 50),
        ("TiB", 40),
        ("GiB", 30),
        ("MiB", 20),
        ("KiB", 10),
    ];
    for (unit, shift) in UNITS {
        if bytes >= 1 << shift && bytes.trailing_zeros() >= shift {
            return format!("{} {unit}", bytes >> shift);
        }
    }
    format!("{bytes} B")
}

/// Parses a size people type: a number of bytes, optionally followed by a binary unit (`K`,
/// `M`, `G`, `T`, `P`, or `KiB` … `PiB`; case-insensitive, spaces allowed before the unit).
/// Decimal units (`KB`, `MB`, …) are refused rather than guessed at.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| {
        format!(
            "{text:?} is not a size (a number of bytes, optionally with a unit such as MiB or GiB)"
        )
    })?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        "t" | "tib" => 40,
        "p" | "pib" => 50,
        "kb" | "mb" | "gb" | "tb" | "pb" => {
            return Err(format!(
                "{text:?}: use binary units (KiB, MiB, GiB, TiB), which say exactly how many bytes"
            ))
        }
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?} (use B, KiB, MiB, GiB, TiB or PiB)"
            ))
        }
    };
    number
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(20 * 1024 * 1024), "20.0 MiB");
    }

    #[test]
    fn compact_sizes_and_parsing_round_trip() {
        assert_eq!(compact_size(64 << 30), "64 GiB");
        assert_eq!(compact_size(128 << 20), "128 MiB");
        assert_eq!(compact_size(1000), "1000 B");
        assert_eq!(compact_size(0), "0 B");
        assert_eq!(compact_size((1 << 20) + 512), "1049088 B");
        for n in [0u64, 1, 1000, 64 << 30, 128 << 20, 3 << 40] {
            assert_eq!(parse_size(&compact_size(n)), Ok(n));
        }
        assert_eq!(parse_size("64G"), Ok(64 << 30));
        assert_eq!(parse_size("500 mib"), Ok(500 << 20));
        assert_eq!(parse_size("123"), Ok(123));
        assert!(parse_size("64GB").unwrap_err().contains("binary units"));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("1.5G").is_err());
        assert!(parse_size("99999999999P")
            .unwrap_err()
            .contains("too large"));
    }
}
