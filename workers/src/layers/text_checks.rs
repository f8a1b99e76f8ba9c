//! What reads wrong in a text a person gets: the checks the tests that enumerate every
//! pitch, text and report sentence apply.

/// What reads wrong in a text a person gets, if anything.
pub fn broken(text: &str) -> Option<&'static str> {
    let lower = text.to_lowercase();
    let checks: [(bool, &'static str); 9] = [
        (
            text.contains('{') || text.contains('}'),
            "an unfilled placeholder",
        ),
        (
            text.contains('[') || text.contains(']'),
            "a bracketed placeholder",
        ),
        (text.contains("  "), "a doubled space"),
        (
            text.contains(" .") || text.contains(" ,") || text.contains(": ."),
            "a gap before punctuation",
        ),
        (
            text.contains("..") && !text.contains("..."),
            "a doubled full stop",
        ),
        (
            lower.contains("missing no ")
                || lower.contains("not no ")
                || lower.contains("without no "),
            "a doubled negative",
        ),
        (lower.contains("no no "), "a doubled word"),
        (text.trim() != text, "stray whitespace at an end"),
        (
            !text.trim_end().ends_with(['.', '?', '!', '…']),
            "no closing punctuation",
        ),
    ];
    checks.into_iter().find(|(bad, _)| *bad).map(|(_, why)| why)
}
