//! `Accept-Encoding` negotiation for precompressed sidecars (`.br`, `.zst`, `.gz`).

/// A content coding with a precompressed sidecar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Coding {
    /// Brotli, `<file>.br`.
    Br,
    /// Zstandard, `<file>.zst`.
    Zstd,
    /// Gzip, `<file>.gz`.
    Gzip,
}

impl Coding {
    /// Preference order on equal q-values (Caddy's default order).
    pub const ALL: [Coding; 3] = [Coding::Br, Coding::Zstd, Coding::Gzip];

    /// The `Content-Encoding` token.
    pub fn token(self) -> &'static str {
        match self {
            Coding::Br => "br",
            Coding::Zstd => "zstd",
            Coding::Gzip => "gzip",
        }
    }

    /// The sidecar file suffix.
    pub fn suffix(self) -> &'static str {
        match self {
            Coding::Br => ".br",
            Coding::Zstd => ".zst",
            Coding::Gzip => ".gz",
        }
    }
}

/// Picks the best available coding for `accept` (an `Accept-Encoding` value), or `None` for
/// identity. `q=0` excludes a coding; `*` covers codings not listed; ties prefer br, zstd, gzip.
pub fn choose(accept: Option<&str>, available: &[Coding]) -> Option<Coding> {
    let accept = accept?;
    let mut best: Option<(Coding, u16)> = None;
    for coding in Coding::ALL {
        if !available.contains(&coding) {
            continue;
        }
        let q = quality(accept, coding.token());
        if q > 0 && best.is_none_or(|(_, b)| q > b) {
            best = Some((coding, q));
        }
    }
    best.map(|(c, _)| c)
}

/// The q-value (0..=1000) given to `token`, falling back to `*`, else 0.
fn quality(accept: &str, token: &str) -> u16 {
    let mut star = None;
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or("").trim();
        let mut q = 1000u16;
        for param in parts {
            if let Some(v) = param
                .trim()
                .strip_prefix("q=")
                .or_else(|| param.trim().strip_prefix("Q="))
            {
                q = parse_q(v.trim());
            }
        }
        if name.eq_ignore_ascii_case(token)
            || (token == "gzip" && name.eq_ignore_ascii_case("x-gzip"))
        {
            return q;
        }
        if name == "*" {
            star = Some(q);
        }
    }
    star.unwrap_or(0)
}

/// Parses a q-value into thousandths; anything malformed counts as 0 (not acceptable).
fn parse_q(v: &str) -> u16 {
    let Ok(f) = v.parse::<f32>() else { return 0 };
    if !(0.0..=1.0).contains(&f) {
        return 0;
    }
    (f * 1000.0).round() as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use Coding::*;

    #[test]
    fn negotiation() {
        let all = [Br, Zstd, Gzip];
        assert_eq!(choose(None, &all), None);
        assert_eq!(choose(Some("gzip, br"), &all), Some(Br));
        assert_eq!(choose(Some("gzip, br;q=0.5"), &all), Some(Gzip));
        assert_eq!(choose(Some("br;q=0, gzip;q=0"), &all), None);
        assert_eq!(choose(Some("*"), &[Gzip]), Some(Gzip));
        assert_eq!(choose(Some("*;q=0.1, gzip;q=0"), &[Gzip, Br]), Some(Br));
        assert_eq!(choose(Some("identity"), &all), None);
        assert_eq!(choose(Some("br"), &[Gzip]), None);
        assert_eq!(choose(Some("zstd, gzip"), &all), Some(Zstd));
    }
}
