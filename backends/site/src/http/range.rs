//! `Range: bytes=...` (RFC 9110 §14): the header's syntax is `http-range-header`'s strict
//! parser; what is served is the site's policy, applied here.
//!
//! Several ranges are answered with `multipart/byteranges`: ranges are sorted and overlapping
//! or adjacent ones merged first (the crate's own `validate` refuses more than two overlapping
//! ranges, which the site has always merged instead), and a request with more than
//! [`MAX_RANGES`] ranges is served whole (200), as nginx does with `max_ranges`.

use std::num::NonZeroUsize;

use http_range_header::SyntacticallyCorrectRange;

/// The most ranges honoured in one request.
pub const MAX_RANGES: usize = 16;

/// What a `Range` header asks for, against a representation of a known length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeRequest {
    /// Ignore the header and send the whole representation (unknown unit, garbage, too many).
    Full,
    /// 416 with `Content-Range: bytes */len`.
    Unsatisfiable,
    /// Inclusive `(start, end)` byte ranges, sorted and merged; never empty.
    Ranges(Vec<(u64, u64)>),
}

/// Parses `value` for a representation of `len` bytes.
pub fn parse(value: &str, len: u64) -> RangeRequest {
    let max = NonZeroUsize::new(MAX_RANGES).unwrap_or(NonZeroUsize::MIN);
    // Any syntax error, an unknown unit or too many ranges: RFC 9110 lets a server ignore the
    // header, and serving the whole representation is what every client copes with.
    let Ok(parsed) = http_range_header::parse_range_header_with_max_ranges(value, max) else {
        return RangeRequest::Full;
    };
    let mut ranges: Vec<(u64, u64)> = parsed
        .into_ranges()
        .into_iter()
        .filter_map(|range| satisfiable(range, len))
        .collect();
    if ranges.is_empty() {
        return RangeRequest::Unsatisfiable;
    }
    ranges.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for (start, end) in ranges {
        match merged.last_mut() {
            Some(last) if start <= last.1.saturating_add(1) => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    RangeRequest::Ranges(merged)
}

/// The inclusive bytes `range` selects in a `len`-byte representation, if any (§14.1.2): a
/// suffix longer than the representation selects all of it, an end past it is clipped.
fn satisfiable(range: SyntacticallyCorrectRange, len: u64) -> Option<(u64, u64)> {
    let last = len.checked_sub(1)?;
    match range {
        SyntacticallyCorrectRange::FromStart(start) => (start <= last).then_some((start, last)),
        SyntacticallyCorrectRange::FromLast(suffix) => {
            (suffix > 0).then(|| (len.saturating_sub(suffix), last))
        }
        SyntacticallyCorrectRange::Indexed(start, end) => {
            (start <= last).then(|| (start, end.min(last)))
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use RangeRequest::*;

    /// What every answer must satisfy: ranges are non-empty, inside the representation,
    /// sorted, neither overlapping nor adjacent, and no more than were honoured.
    fn assert_well_formed(answer: &RangeRequest, len: u64) {
        if let Ranges(ranges) = answer {
            assert!(
                !ranges.is_empty() && ranges.len() <= MAX_RANGES,
                "{ranges:?}"
            );
            for (start, end) in ranges {
                assert!(start <= end && *end < len, "{ranges:?} for {len}");
            }
            for pair in ranges.windows(2) {
                if let [(_, end), (next, _)] = pair {
                    assert!(end.saturating_add(1) < *next, "{ranges:?}");
                }
            }
        }
    }

    /// One range spec as a client might write it, valid or not.
    fn spec() -> impl Strategy<Value = String> {
        let number = prop_oneof![
            Just(String::new()),
            any::<u64>().prop_map(|n| n.to_string()),
            (0u64..300).prop_map(|n| n.to_string()),
            "[0-9]{19,25}",
            "[ a-z+-]{0,3}",
        ];
        (
            number.clone(),
            number,
            "[ \\t]{0,2}",
            prop::bool::weighted(0.9),
        )
            .prop_map(|(a, b, ws, dash)| format!("{ws}{a}{}{b}{ws}", if dash { "-" } else { "" }))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn random_headers_give_a_well_formed_answer(value in "\\PC{0,64}", len in any::<u64>()) {
            assert_well_formed(&parse(&value, len), len);
            let bytes = format!("bytes={value}");
            assert_well_formed(&parse(&bytes, len), len);
            assert_well_formed(&parse(&bytes, len % 1000), len % 1000);
        }

        #[test]
        fn range_lists_give_a_well_formed_answer(
            specs in prop::collection::vec(spec(), 0..24),
            len in prop_oneof![Just(0u64), Just(1), 0u64..500, Just(u64::MAX)],
            unit in prop_oneof![Just("bytes="), Just(" bytes="), Just("Bytes="), Just("bytes ="), Just("")],
        ) {
            let value = format!("{unit}{}", specs.join(","));
            let answer = parse(&value, len);
            assert_well_formed(&answer, len);
            // Without the unit there is nothing to honour; other spellings may be ignored too.
            if unit.is_empty() {
                prop_assert_eq!(answer, Full);
            }
        }

        #[test]
        fn a_single_satisfiable_range_is_answered_exactly(
            len in 1u64..u64::MAX,
            a in any::<u64>(),
            b in any::<u64>(),
        ) {
            let (start, end) = (a.min(b) % len, a.max(b));
            let answer = parse(&format!("bytes={start}-{end}"), len);
            prop_assert_eq!(answer, Ranges(vec![(start, end.min(len - 1))]));
        }
    }

    #[test]
    fn single_ranges() {
        assert_eq!(parse("bytes=0-9", 100), Ranges(vec![(0, 9)]));
        assert_eq!(parse("bytes=50-", 100), Ranges(vec![(50, 99)]));
        assert_eq!(parse("bytes=-10", 100), Ranges(vec![(90, 99)]));
        assert_eq!(parse("bytes=90-1000", 100), Ranges(vec![(90, 99)]));
        assert_eq!(parse("bytes=-1000", 100), Ranges(vec![(0, 99)]));
    }

    #[test]
    fn unsatisfiable_and_ignored() {
        assert_eq!(parse("bytes=100-", 100), Unsatisfiable);
        assert_eq!(parse("bytes=-0", 100), Unsatisfiable);
        assert_eq!(parse("bytes=0-0", 0), Unsatisfiable);
        assert_eq!(parse("items=0-9", 100), Full);
        assert_eq!(parse("bytes=abc", 100), Full);
        assert_eq!(parse("bytes=9-1", 100), Full);
        assert_eq!(parse("bytes=", 100), Full);
        let many = format!(
            "bytes={}",
            (0..20)
                .map(|i| format!("{}-{}", i * 2, i * 2))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert_eq!(parse(&many, 100), Full);
    }

    #[test]
    fn several_ranges_are_sorted_and_merged() {
        assert_eq!(
            parse("bytes=50-59, 0-9", 100),
            Ranges(vec![(0, 9), (50, 59)])
        );
        assert_eq!(parse("bytes=0-9,5-20,21-30", 100), Ranges(vec![(0, 30)]));
        assert_eq!(parse("bytes=0-9,200-300", 100), Ranges(vec![(0, 9)]));
        // More than two overlapping ranges: the crate's own validation refuses these; the
        // site merges them.
        assert_eq!(
            parse("bytes=0-10,5-15,8-20,30-40", 100),
            Ranges(vec![(0, 20), (30, 40)])
        );
    }

    #[test]
    fn numbers_past_u64_select_to_the_end() {
        // An end too large for u64 is "past the representation", so it is clipped, as any
        // smaller end past the last byte is.
        assert_eq!(
            parse("bytes=10-99999999999999999999999", 100),
            Ranges(vec![(10, 99)])
        );
        assert_eq!(parse("bytes=99999999999999999999999-", 100), Unsatisfiable);
    }
}
